"""Personal API tokens through the public API (real Postgres + NATS): shown once, scoped, revocable at once."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import psycopg
import pytest
from litestar.testing import AsyncTestClient
from nats.aio.msg import Msg

from adapters.event_store import EVENTS_TABLE
from adapters.settings import Settings
from domain.identity.roles import ALL_SCOPES, Role
from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
READ_WRITE = ["issues:read", "issues:write"]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def create_pat(api: Client, headers: dict[str, str], name: str = "local-dev",
                     scopes: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    response = await api.post("/v1/api-tokens", json={"name": name, "scopes": scopes or READ_WRITE, **fields},
                              headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_personal_token_is_shown_once_and_authenticates_as_its_owner(api: Client, tenant: Tenant) -> None:
    token = await create_pat(api, tenant.headers())

    created = await api.post("/v1/issues", json={"title": "via PAT"}, headers=bearer(token["secret"]))
    listed = await api.get("/v1/api-tokens", headers=tenant.headers())

    assert token["secret"].startswith("clp_pat_") and len(token["secret"]) >= len("clp_pat_") + 43
    assert token["id"].startswith("tok_") and token["kind"] == "personal" and token["owner_id"] == tenant.user_id
    assert token["scopes"] == READ_WRITE and token["status"] == "active" and token["last_used_at"] is None
    assert created.status_code == 201, created.text
    activity = await api.get(f"/v1/issues/{created.json()['id']}/activity", headers=tenant.headers())
    assert activity.json()["data"][0]["actor"] == {"kind": "user", "id": tenant.user_id}
    [row] = listed.json()["data"]
    assert row["id"] == token["id"] and "secret" not in row and token["secret"] not in listed.text
    assert row["last_used_at"] is not None


async def test_a_token_has_only_its_scopes(api: Client, tenant: Tenant) -> None:
    token = await create_pat(api, tenant.headers(), scopes=["issues:read"])

    read = await api.get("/v1/issues", headers=bearer(token["secret"]))
    write = await api.post("/v1/issues", json={"title": "x"}, headers=bearer(token["secret"]))

    assert read.status_code == 200 and write.status_code == 403


async def test_a_revoked_token_is_401_at_once_and_cannot_be_reactivated(api: Client, tenant: Tenant) -> None:
    token = await create_pat(api, tenant.headers())
    assert (await api.get("/v1/issues", headers=bearer(token["secret"]))).status_code == 200

    revoked = await api.delete(f"/v1/api-tokens/{token['id']}", headers=tenant.headers())
    after = await api.get("/v1/issues", headers=bearer(token["secret"]))
    rotate = await api.post(f"/v1/api-tokens/{token['id']}/rotate", headers=tenant.headers())
    listed = await api.get("/v1/api-tokens?include_revoked=true", headers=tenant.headers())

    assert revoked.status_code == 204
    assert after.status_code == 401 and after.json()["error"]["code"] == "unauthorized"
    assert rotate.status_code == 422 and rotate.json()["error"]["code"] == "invalid_transition"
    assert [(t["id"], t["status"]) for t in listed.json()["data"]] == [(token["id"], "revoked")]
    assert (await api.get("/v1/api-tokens", headers=tenant.headers())).json()["data"] == []


async def test_rotation_shows_a_new_secret_once_and_the_old_one_is_401_at_once(api: Client, tenant: Tenant) -> None:
    token = await create_pat(api, tenant.headers())

    rotated = await api.post(f"/v1/api-tokens/{token['id']}/rotate", headers=tenant.headers())
    old = await api.get("/v1/issues", headers=bearer(token["secret"]))
    new = await api.get("/v1/issues", headers=bearer(rotated.json()["secret"]))

    assert rotated.status_code == 200
    assert rotated.json()["id"] == token["id"] and rotated.json()["rotated_at"] is not None
    assert rotated.json()["secret"].startswith("clp_pat_") and rotated.json()["secret"] != token["secret"]
    assert old.status_code == 401 and new.status_code == 200


async def test_an_expired_token_is_401(api: Client, tenant: Tenant) -> None:
    expires_at = datetime.now(UTC) + timedelta(seconds=1.5)
    token = await create_pat(api, tenant.headers(), expires_at=expires_at.isoformat())
    assert (await api.get("/v1/issues", headers=bearer(token["secret"]))).status_code == 200

    await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.2)
    after = await api.get("/v1/issues", headers=bearer(token["secret"]))

    assert after.status_code == 401


async def test_an_expiry_in_the_past_is_a_validation_error(api: Client, tenant: Tenant) -> None:
    response = await api.post("/v1/api-tokens", json={"name": "old", "scopes": READ_WRITE,
                                                      "expires_at": "2020-01-01T00:00:00Z"},
                              headers=tenant.headers())

    assert response.status_code == 400 and response.json()["error"]["details"]["field"] == "expires_at"


@pytest.mark.parametrize("secret", ["clp_pat_" + secrets.token_urlsafe(32), "clp_sa_" + secrets.token_urlsafe(32),
                                    "clp_scim_" + secrets.token_urlsafe(32), "clp_whatever", "clp_pat_"])
async def test_an_unknown_secret_is_401(api: Client, tenant: Tenant, secret: str) -> None:
    response = await api.get("/v1/issues", headers=bearer(secret))

    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


async def test_a_name_is_unique_among_the_owners_active_tokens(api: Client, tenant: Tenant) -> None:
    first = await create_pat(api, tenant.headers(), name="grafana")

    again = await api.post("/v1/api-tokens", json={"name": "grafana", "scopes": READ_WRITE}, headers=tenant.headers())
    other_member = await api.post("/v1/api-tokens", json={"name": "grafana", "scopes": ["issues:read"]},
                                  headers=tenant.member_headers(Role.VIEWER))
    await api.delete(f"/v1/api-tokens/{first['id']}", headers=tenant.headers())
    reused = await api.post("/v1/api-tokens", json={"name": "grafana", "scopes": READ_WRITE},
                            headers=tenant.headers())

    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert other_member.status_code == 201
    assert reused.status_code == 201 and reused.json()["id"] != first["id"]


async def test_scopes_above_the_creators_are_refused_and_unknown_scopes_are_invalid(api: Client,
                                                                                    tenant: Tenant) -> None:
    analyst = tenant.member_headers(Role.ANALYST)
    above = await api.post("/v1/api-tokens", json={"name": "x", "scopes": ["issues:read", "members:admin"]},
                           headers=analyst)
    narrowed = await api.post("/v1/api-tokens", json={"name": "y", "scopes": ["members:admin"]},
                              headers=tenant.headers(Role.ANALYST))
    unknown = await api.post("/v1/api-tokens", json={"name": "z", "scopes": ["issues:delete"]}, headers=analyst)

    assert above.status_code == 403 and above.json()["error"]["details"] == {"field": "scopes",
                                                                              "scope": "members:admin"}
    assert narrowed.status_code == 403
    assert unknown.status_code == 400 and unknown.json()["error"]["details"]["field"] == "scopes[0]"


async def test_the_scope_catalogue_groups_every_scope_in_the_docs_tabs(api: Client, tenant: Tenant) -> None:
    response = await api.get("/v1/api-tokens/scopes", headers=tenant.member_headers(Role.VIEWER))

    groups = response.json()["data"]
    assert [g["group"] for g in groups] == ["Data", "Integrations", "Workspace", "AI & Reports", "Admin"]
    listed = [s["scope"] for g in groups for s in g["scopes"]]
    assert sorted(listed) == sorted(ALL_SCOPES) and len(listed) == len(set(listed))
    granted = {s["scope"] for g in groups for s in g["scopes"] if s["granted"]}
    assert "issues:read" in granted and "issues:write" not in granted
    assert "issues:read" in [s["scope"] for s in groups[0]["scopes"]]


async def test_admins_list_and_revoke_others_tokens_members_cannot(api: Client, tenant: Tenant) -> None:
    analyst = tenant.member_headers(Role.ANALYST)
    theirs = await create_pat(api, analyst, name="theirs")
    mine = await create_pat(api, tenant.headers(), name="mine")

    peek = await api.get("/v1/api-tokens?owner_id=*", headers=analyst)
    steal = await api.delete(f"/v1/api-tokens/{mine['id']}", headers=analyst)
    rotate_other = await api.post(f"/v1/api-tokens/{theirs['id']}/rotate", headers=tenant.headers(Role.TENANT_ADMIN))
    everyone = await api.get("/v1/api-tokens?owner_id=*", headers=tenant.headers(Role.TENANT_ADMIN))
    revoked = await api.delete(f"/v1/api-tokens/{theirs['id']}", headers=tenant.headers(Role.TENANT_ADMIN))

    assert peek.status_code == 403 and steal.status_code == 404 and rotate_other.status_code == 404
    assert {t["id"] for t in everyone.json()["data"]} == {theirs["id"], mine["id"]}
    assert revoked.status_code == 204
    assert (await api.get("/v1/issues", headers=bearer(theirs["secret"]))).status_code == 401
    assert (await api.get("/v1/issues", headers=bearer(mine["secret"]))).status_code == 200


async def test_another_workspaces_token_id_is_404(api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    token = await create_pat(api, tenant.headers())

    admin = other_tenant.headers(Role.TENANT_ADMIN)
    responses = [await api.delete(f"/v1/api-tokens/{token['id']}", headers=admin),
                 await api.post(f"/v1/api-tokens/{token['id']}/rotate", headers=admin),
                 await api.delete("/v1/api-tokens/tok_garbage", headers=admin)]
    listed = await api.get("/v1/api-tokens?owner_id=*", headers=admin)

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert listed.json()["data"] == []
    assert (await api.get("/v1/issues", headers=bearer(token["secret"]))).status_code == 200


async def test_a_service_account_cannot_hold_personal_tokens(api: Client, tenant: Tenant) -> None:
    account = (await api.post("/v1/service-accounts", json={"name": "bot", "role": "analyst"},
                              headers=tenant.headers(Role.TENANT_ADMIN))).json()
    sa_token = (await api.post(f"/v1/service-accounts/{account['id']}/tokens", json={"name": "t"},
                               headers=tenant.headers(Role.TENANT_ADMIN))).json()

    response = await api.post("/v1/api-tokens", json={"name": "x", "scopes": ["issues:read"]},
                              headers=bearer(sa_token["secret"]))

    assert response.status_code == 403


async def test_secrets_never_reach_logs_events_or_nats_only_their_hashes_do(
        api: Client, tenant: Tenant, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    received: list[bytes] = []

    async def collect(msg: Msg) -> None:
        received.append(msg.data)

    nc = await nats.connect(settings.nats_url)
    await nc.subscribe(f"{settings.subject_prefix}.{tenant.workspace_id}.api_token.>", cb=collect)
    await nc.flush()

    token = await create_pat(api, tenant.headers())
    await api.get("/v1/issues", headers=bearer(token["secret"]))
    rotated = (await api.post(f"/v1/api-tokens/{token['id']}/rotate", headers=tenant.headers())).json()
    await api.get("/v1/issues", headers=bearer(rotated["secret"]))
    await api.get("/v1/issues", headers=bearer(token["secret"]))  # refused: must not be logged either
    deadline = time.monotonic() + 10
    while len(received) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await nc.close()

    secrets_ = [token["secret"], rotated["secret"]]
    hashes = [hashlib.sha256(s.encode()).hexdigest() for s in secrets_]
    assert all(s not in caplog.text for s in secrets_)
    assert len(received) == 2 and all(s.encode() not in m for s in secrets_ for m in received)
    assert hashes[0].encode() in received[0] and hashes[1].encode() in received[1]
    stored = _stored_states(settings, tenant.workspace_id)
    assert any(hashes[0].encode() in state for state in stored)
    assert all(s.encode() not in state for s in secrets_ for state in stored)
    audit = await _audit_entries(api, tenant, "api_token.", 2)
    assert {entry["action"] for entry in audit} == {"api_token.created", "api_token.rotated"}
    assert all(value not in str(audit) for value in [*secrets_, *hashes])


async def _audit_entries(api: Client, tenant: Tenant, action: str, at_least: int) -> list[dict[str, Any]]:
    """The audit log is a projection of its own: wait (bounded) until it has the entries."""
    deadline = time.monotonic() + 10
    while True:
        page = await api.get(f"/v1/audit-log?action={action}", headers=tenant.headers(Role.TENANT_ADMIN))
        entries: list[dict[str, Any]] = page.json()["data"]
        if len(entries) >= at_least or time.monotonic() > deadline:
            return entries
        await asyncio.sleep(0.05)


def _stored_states(settings: Settings, workspace_id: str) -> list[bytes]:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        rows = conn.execute(f"SELECT state FROM {EVENTS_TABLE} WHERE position(%s::bytea in state) > 0",
                            (workspace_id.encode(),)).fetchall()
    return [bytes(row[0]) for row in rows]


async def test_an_idempotency_key_never_stores_or_replays_a_secret(api: Client, tenant: Tenant,
                                                                  settings: Settings) -> None:
    headers = {**tenant.headers(), "Idempotency-Key": "create-once"}
    first = await api.post("/v1/api-tokens", json={"name": "ci", "scopes": READ_WRITE}, headers=headers)
    again = await api.post("/v1/api-tokens", json={"name": "ci", "scopes": READ_WRITE}, headers=headers)
    rotated = await api.post(f"/v1/api-tokens/{first.json()['id']}/rotate",
                             headers={**tenant.headers(), "Idempotency-Key": "rotate-once"})

    assert first.status_code == 201 and "idempotency-replayed" not in again.headers
    assert again.status_code == 409  # ran again: the name is taken, and no secret is shown twice
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        bodies = [bytes(row[0]) for row in conn.execute(
            "SELECT body FROM idempotency_keys WHERE body IS NOT NULL").fetchall()]
    assert all(secret.encode() not in body for body in bodies
               for secret in (first.json()["secret"], rotated.json()["secret"]))


async def test_a_narrowed_credential_cannot_manage_its_owners_tokens(api: Client, tenant: Tenant) -> None:
    """Issue #10 F1: a token made for reading issues rotated (and got the secret of) its owner's admin token."""
    owner = tenant.headers(Role.OWNER)
    broad = await create_pat(api, owner, name="admin", scopes=["members:admin", "members:read"])
    reader = await create_pat(api, owner, name="reader", scopes=["issues:read"])
    narrowed_session = tenant.headers(Role.OWNER, frozenset({"issues:read"}))  # causeloop token --scope issues:read

    answers = [response for headers in (bearer(reader["secret"]), narrowed_session) for response in (
        await api.post(f"/v1/api-tokens/{broad['id']}/rotate", headers=headers),
        await api.delete(f"/v1/api-tokens/{broad['id']}", headers=headers),
        await api.post("/v1/api-tokens", json={"name": "more", "scopes": ["issues:read"]}, headers=headers),
        await api.get("/v1/api-tokens", headers=headers))]

    assert [(r.status_code, r.json()["error"]["details"]) for r in answers] == [
        (403, {"required_scope": "api_tokens:write"})] * 8
    assert (await api.get("/v1/members", headers=bearer(broad["secret"]))).status_code == 200  # untouched
    assert (await api.post(f"/v1/api-tokens/{broad['id']}/rotate", headers=owner)).status_code == 200


async def test_rotating_needs_every_scope_of_the_rotated_token(api: Client, tenant: Tenant) -> None:
    owner = tenant.headers(Role.OWNER)
    broad = await create_pat(api, owner, name="admin", scopes=["members:read"])
    narrow = await create_pat(api, owner, name="narrow", scopes=["issues:read"])
    manager = await create_pat(api, owner, name="manager", scopes=["api_tokens:write", "issues:read"])

    refused = await api.post(f"/v1/api-tokens/{broad['id']}/rotate", headers=bearer(manager["secret"]))
    allowed = await api.post(f"/v1/api-tokens/{narrow['id']}/rotate", headers=bearer(manager["secret"]))

    assert refused.status_code == 403 and "secret" not in refused.json()
    assert refused.json()["error"]["details"] == {"field": "scopes", "scope": "members:read"}
    assert (await api.get("/v1/members", headers=bearer(broad["secret"]))).status_code == 200
    assert allowed.status_code == 200, allowed.text


async def test_a_token_that_expires_cannot_make_or_rotate_one_that_outlives_it(api: Client, tenant: Tenant) -> None:
    """Issue #10 F2: a PAT about to expire made a wider one that never expires."""
    owner = tenant.headers(Role.OWNER)
    parent_expiry = datetime.now(UTC) + timedelta(minutes=5)
    parent = bearer((await create_pat(api, owner, name="parent", scopes=["api_tokens:write", "issues:read"],
                                      expires_at=parent_expiry.isoformat()))["secret"])
    forever = await create_pat(api, owner, name="forever", scopes=["issues:read"])

    def child(**fields: Any) -> dict[str, Any]:
        return {"name": f"child-{secrets.token_hex(4)}", "scopes": ["issues:read"], **fields}

    never = await api.post("/v1/api-tokens", json=child(expires_at=None), headers=parent)
    unset = await api.post("/v1/api-tokens", json=child(), headers=parent)
    later = await api.post("/v1/api-tokens", json=child(expires_at=(parent_expiry + timedelta(seconds=1)).isoformat()),
                           headers=parent)
    wider = await api.post("/v1/api-tokens", json=child(scopes=["issues:read", "issues:write"],
                                                        expires_at=parent_expiry.isoformat()), headers=parent)
    rotate_forever = await api.post(f"/v1/api-tokens/{forever['id']}/rotate", headers=parent)
    within = await api.post("/v1/api-tokens", json=child(expires_at=parent_expiry.isoformat()), headers=parent)

    for refused in (never, unset, later, rotate_forever):
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["details"] == {"field": "expires_at", "limit": parent_expiry.isoformat()}
    assert wider.status_code == 403 and wider.json()["error"]["details"]["field"] == "scopes"
    assert within.status_code == 201, within.text
    assert datetime.fromisoformat(within.json()["expires_at"]) == parent_expiry
