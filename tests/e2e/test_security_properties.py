"""Issue #3's security properties, each in one place: every way a token stops working is a 401, and
Row-Level Security alone keeps every tenant table's rows inside their workspace."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.postgres import READER_ROLE
from adapters.settings import Settings
from domain.identity.roles import Role
from tests.e2e.conftest import Tenant
from tests.e2e.members_helpers import Client, Member, owner_headers

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


def _claims(headers: dict[str, str]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(headers["Authorization"].removeprefix("Bearer "),
                                        options={"verify_signature": False})
    return claims


async def _personal_token(api: Client, tenant: Tenant, name: str) -> dict[str, Any]:
    created = await api.post("/v1/api-tokens", json={"name": name, "scopes": ["issues:read"]},
                             headers=owner_headers(tenant))
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def dead_tokens(api: Client, tenant: Tenant, settings: Settings) -> dict[str, str]:
    """One token per way a token must stop working; each was valid (or would be, but for its one flaw)."""
    claims = _claims(owner_headers(tenant))
    now = int(datetime.now(UTC).timestamp())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens = {
        "expired": jwt.encode({**claims, "iat": now - 80 * 3600, "exp": now - 8 * 3600}, settings.jwt_secret,
                              algorithm="HS256"),
        "wrong signature": jwt.encode(claims, "another-secret-of-at-least-32-bytes!!", algorithm="HS256"),
        "wrong audience": jwt.encode({**claims, "aud": "someone-else"}, settings.jwt_secret, algorithm="HS256"),
        "alg none": jwt.encode(claims, "", algorithm="none"),
        "HS/RS confusion (RS256)": jwt.encode(claims, rsa_key, algorithm="RS256"),
    }
    revoked = await _personal_token(api, tenant, "to-revoke")
    assert (await api.delete(f"/v1/api-tokens/{revoked['id']}", headers=owner_headers(tenant))).status_code == 204
    tokens["revoked API token"] = revoked["secret"]
    rotated = await _personal_token(api, tenant, "to-rotate")
    rotation = await api.post(f"/v1/api-tokens/{rotated['id']}/rotate", headers=owner_headers(tenant))
    assert rotation.status_code == 200, rotation.text
    tokens["rotated-away API token"] = rotated["secret"]
    removed, suspended = Member(tenant, Role.ANALYST), Member(tenant, Role.ANALYST)
    assert (await api.delete(f"/v1/members/{removed.id}", headers=owner_headers(tenant))).status_code == 204
    suspension = await api.patch(f"/v1/members/{suspended.id}", json={"status": "suspended"},
                                 headers=owner_headers(tenant))
    assert suspension.status_code == 200, suspension.text
    tokens["removed member"] = removed.headers["Authorization"].removeprefix("Bearer ")
    tokens["suspended member"] = suspended.headers["Authorization"].removeprefix("Bearer ")
    return tokens


async def test_every_dead_token_is_401(api: Client, tenant: Tenant, settings: Settings) -> None:
    assert (await api.get("/v1/issues", headers=owner_headers(tenant))).status_code == 200
    tokens = await dead_tokens(api, tenant, settings)

    # The standing check runs before anything else (api/core/auth.py): whatever else is wrong with the request, a dead
    # token is answered 401 first, right after the change that killed it (each change empties the cache).
    shapes = ["", "?q=disk", "?limit=0", "?risk_min=5&risk_max=1", "?cursor=forged", "?status=bogus"]
    answers = {(kind, shape): await api.get(f"/v1/issues{shape}", headers={"Authorization": f"Bearer {token}"})
               for kind, token in tokens.items() for shape in shapes}

    assert {key: (r.status_code, r.json()["error"]["code"]) for key, r in answers.items()} == {
        key: (401, "unauthorized") for key in answers}


async def test_every_dead_token_is_401_on_the_issue_commands_and_writes_nothing(
        api: Client, tenant: Tenant, settings: Settings) -> None:
    """A dead token gets 401 on every issue command before any other error, and its command never reaches the
    event store."""
    owner = owner_headers(tenant)
    target = (await api.post("/v1/issues", json={"title": "Disk full"}, headers=owner)).json()
    tokens = await dead_tokens(api, tenant, settings)
    before = (await api.get("/v1/issues", headers=owner)).json()["page"]["total"]
    commands = {
        "open": ("POST", "/v1/issues", {"title": "written by a dead token"}),
        "open, bad body": ("POST", "/v1/issues", {"title": ""}),
        "open with a key": ("POST", "/v1/issues", {"title": "keyed"}),
        "edit": ("PATCH", f"/v1/issues/{target['id']}", {"title": "renamed by a dead token"}),
        "close": ("POST", f"/v1/issues/{target['id']}/close", None),
        "reopen a missing issue": ("POST", "/v1/issues/iss_00000000000000000000000000/reopen", None),
    }

    answers = {}
    for kind, token in tokens.items():
        for name, (method, path, body) in commands.items():
            headers = {"Authorization": f"Bearer {token}"}
            if name == "open with a key":
                headers["Idempotency-Key"] = f"dead-{kind}"
            answers[kind, name] = await api.request(method, path, json=body, headers=headers)

    assert {key: (r.status_code, r.json()["error"]["code"]) for key, r in answers.items()} == {
        key: (401, "unauthorized") for key in answers}
    after = await api.get(f"/v1/issues/{target['id']}", headers=owner)
    assert (await api.get("/v1/issues", headers=owner)).json()["page"]["total"] == before
    assert after.json()["title"] == "Disk full" and after.json()["status"] == target["status"]
    assert after.headers["ETag"] == f'"{target["version"]}"'


async def test_a_member_whose_new_role_lacks_the_scope_gets_403_with_the_old_token(api: Client, tenant: Tenant) -> None:
    """The token still claims issues:read; the current role (executive) has no such scope."""
    member = Member(tenant, Role.ANALYST)
    before = await api.get("/v1/issues", headers=member.headers)
    demoted = await api.patch(f"/v1/members/{member.id}", json={"role": "executive"}, headers=owner_headers(tenant))

    after = {shape: await api.get(f"/v1/issues{shape}", headers=member.headers) for shape in ("", "?limit=0")}
    write = await api.post("/v1/issues", json={"title": "by a demoted member"}, headers=member.headers)
    total = (await api.get("/v1/issues?q=demoted", headers=owner_headers(tenant))).json()["page"]["total"]

    assert before.status_code == 200 and demoted.status_code == 200, demoted.text
    assert {shape: (r.status_code, r.json()["error"]["details"]) for shape, r in after.items()} == {
        shape: (403, {"required_scope": "issues:read"}) for shape in after}
    assert (write.status_code, write.json()["error"]["details"]) == (403, {"required_scope": "issues:write"})
    assert total == 0


async def test_row_level_security_alone_keeps_every_tenant_table_in_its_workspace(
        api: Client, tenant: Tenant, other_tenant: Tenant, settings: Settings) -> None:
    """Data in every resource of one workspace; then, as the API's reader role set to ANOTHER workspace, a query
    with no workspace filter at all on every RLS table sees none of it."""
    owner = owner_headers(tenant)
    issue = (await api.post("/v1/issues", json={"title": "Disk full"}, headers=owner)).json()
    await api.post(f"/v1/issues/{issue['id']}/comments", json={"body": "again"}, headers=owner)
    await api.post("/v1/invitations", json={"email": f"new@{tenant.slug}.example.test", "role": "viewer"},
                   headers=owner)
    await _personal_token(api, tenant, "rls")
    sa = (await api.post("/v1/service-accounts", json={"name": "ci"}, headers=owner)).json()
    await api.post(f"/v1/service-accounts/{sa['id']}/tokens", json={"name": "ci"}, headers=owner)
    await api.patch("/v1/settings/ai", json={"auto_link": False}, headers=owner)
    await api.post("/v1/onboarding/steps/connect_source/complete", headers=owner)

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        tables = [row[0] for row in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' AND c.relrowsecurity AND c.relforcerowsecurity "
            "ORDER BY 1", (settings.database_schema,))]
        owned = {t: _count(conn, t, tenant.workspace_id) for t in tables}
        others = {t: _count(conn, t, other_tenant.workspace_id) for t in tables}
        with conn.transaction():
            conn.execute("SELECT set_config('role', %s, true), set_config('causeloop.workspace_id', %s, true)",
                         (READER_ROLE, other_tenant.workspace_id))
            asked_by_id = {t: _count(conn, t, tenant.workspace_id) for t in tables}
            unfiltered = {t: _count(conn, t, None) for t in tables}

    assert {"issues", "issue_comments", "memberships", "invitations", "api_tokens", "service_accounts",
            "workspace_settings", "audit_log"} <= {t for t, n in owned.items() if n > 0}, owned
    assert asked_by_id == dict.fromkeys(tables, 0)
    assert unfiltered == others  # no WHERE at all: exactly the other workspace's own rows


def _count(conn: psycopg.Connection[Any], table: str, workspace_id: str | None) -> int:
    """Rows of `table` in `workspace_id`, or every row the connection may see (no filter) when None."""
    if workspace_id is None:
        row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    else:
        row = conn.execute(f'SELECT count(*) FROM "{table}" WHERE workspace_id = %s', (workspace_id,)).fetchone()
    return int(row[0]) if row else 0
