"""GET/PATCH /v1/users/me (docs §12.1), GET /v1/roles, seats, and the role matrix of the member routes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from httpx import Response

from adapters.event_store import EventStore
from adapters.settings import Settings
from adapters.tokens import mint_access_token
from commands.members import membership_id
from commands.provisioning import Provision, Provisioned, ProvisioningCommands
from domain.identity.roles import ROLE_RANK, SCOPES_BY_ROLE, Role, scopes_for
from tests.e2e.conftest import Tenant
from tests.e2e.members_helpers import Client, Member, owner_headers

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


async def test_me_is_the_documented_object(api: Client, tenant: Tenant) -> None:
    member = Member(tenant, Role.ANALYST, f"kim@{tenant.slug}.example.test")

    response = await api.get("/v1/users/me", headers=member.headers)

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"id", "email", "name", "workspace_id", "avatar_url", "clerk_user_id", "created_at",
                         "timezone", "locale", "role", "membership_id"}
    assert {k: body[k] for k in ("id", "email", "name", "workspace_id", "avatar_url", "clerk_user_id", "timezone",
                                 "locale", "role", "membership_id")} == {
        "id": member.user_id, "email": f"kim@{tenant.slug}.example.test", "name": "kim",
        "workspace_id": tenant.workspace_id, "avatar_url": None, "clerk_user_id": None, "timezone": "UTC",
        "locale": "en", "role": "analyst", "membership_id": member.id}


async def test_me_is_open_to_every_role_even_read_only(api: Client, tenant: Tenant) -> None:
    member = Member(tenant, Role.READ_ONLY)

    assert (await api.get("/v1/users/me", headers=member.headers)).status_code == 200
    assert (await api.get("/v1/users/me")).status_code == 401


async def test_patch_me_changes_the_profile_and_null_resets(api: Client, tenant: Tenant) -> None:
    member = Member(tenant, Role.VIEWER)

    changed = await api.patch("/v1/users/me", json={"name": "Kim Lee", "avatar_url": "https://cdn.example/k.png",
                                                    "timezone": "America/New_York", "locale": "pt-BR"},
                              headers=member.headers)
    reread = (await api.get("/v1/users/me", headers=member.headers)).json()
    reset = (await api.patch("/v1/users/me", json={"avatar_url": None, "timezone": None, "name": None},
                             headers=member.headers)).json()
    roster = (await api.get(f"/v1/members/{member.id}", headers=owner_headers(tenant))).json()

    assert changed.status_code == 200
    assert {k: changed.json()[k] for k in ("name", "avatar_url", "timezone", "locale")} == {
        "name": "Kim Lee", "avatar_url": "https://cdn.example/k.png", "timezone": "America/New_York",
        "locale": "pt-BR"}
    assert reread == changed.json()
    assert (reset["name"], reset["avatar_url"], reset["timezone"], reset["locale"]) == ("Kim Lee", None, "UTC",
                                                                                        "pt-BR")
    assert roster["name"] == "Kim Lee"


@pytest.mark.parametrize(("body", "field"), [
    ({"name": ""}, "name"), ({"name": "x" * 201}, "name"), ({"avatar_url": "https://x/" + "a" * 2048}, "avatar_url"),
    ({"timezone": "Mars/Olympus"}, "timezone"), ({"timezone": "x" * 101}, "timezone"),
    ({"locale": "not a locale"}, "locale"), ({"locale": "x" * 21}, "locale"), ({"email": "a@b.c"}, "email"),
])
async def test_patch_me_limits_name_the_field(api: Client, tenant: Tenant, body: dict[str, Any], field: str) -> None:
    response = await api.patch("/v1/users/me", json=body, headers=owner_headers(tenant))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["details"]["field"] == field


async def test_roles_list_every_role_with_its_scopes(api: Client, tenant: Tenant) -> None:
    response = await api.get("/v1/roles", headers=Member(tenant, Role.READ_ONLY).headers)

    roles = {r["role"]: r for r in response.json()["data"]}
    assert response.status_code == 200
    assert set(roles) == {r.value for r in Role}
    assert all(roles[r.value]["scopes"] == sorted(SCOPES_BY_ROLE[r]) for r in Role)
    assert all(roles[r.value]["rank"] == ROLE_RANK[r] for r in Role)
    assert roles["tenant_admin"]["label"] == "Workspace Admin"


# ---- seats ------------------------------------------------------------------------------------------------------


def provision(settings: Settings, store: EventStore, seats: int) -> tuple[Provisioned, dict[str, str]]:
    slug = f"s-{uuid.uuid4().hex[:10]}"
    done = ProvisioningCommands(store).provision(Provision(org_name="Seats Inc", org_slug=slug,
                                                           owner_email=f"owner@{slug}.example.test", seats=seats))
    wait_for_membership(settings, done.workspace_id, done.owner_user_id)
    token = mint_access_token(settings, subject=done.owner_user_id, workspace_id=done.workspace_id, role="owner",
                              scopes=scopes_for(Role.OWNER))
    return done, {"Authorization": f"Bearer {token}"}


def wait_for_membership(settings: Settings, workspace_id: str, user_id: str) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        deadline = time.monotonic() + 10
        while conn.execute("SELECT 1 FROM memberships WHERE workspace_id = %s AND user_id = %s",
                           (workspace_id, user_id)).fetchone() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)


async def test_a_full_workspace_refuses_invitations_and_acceptances_with_seat_limit(
        api: Client, settings: Settings, identity_store: EventStore, other_tenant: Tenant) -> None:
    _, owner = provision(settings, identity_store, seats=2)
    first, second = (Member(other_tenant, Role.VIEWER, f"{n}@{other_tenant.slug}.example.test") for n in "ab")
    sent_a = (await api.post("/v1/invitations", json={"email": f"a@{other_tenant.slug}.example.test",
                                                      "role": "viewer"}, headers=owner)).json()
    sent_b = (await api.post("/v1/invitations", json={"email": f"b@{other_tenant.slug}.example.test",
                                                      "role": "viewer"}, headers=owner)).json()

    joined = await api.post("/v1/invitations/accept", json={"token": sent_a["token"]}, headers=first.headers)
    full = await api.post("/v1/invitations/accept", json={"token": sent_b["token"]}, headers=second.headers)
    more = await api.post("/v1/invitations", json={"email": "c@example.test", "role": "viewer"}, headers=owner)

    assert joined.status_code == 200
    assert [(r.status_code, r.json()["error"]["code"]) for r in (full, more)] == [(422, "seat_limit")] * 2


async def test_reactivating_into_a_full_workspace_is_seat_limit_and_changes_nothing(
        api: Client, settings: Settings, identity_store: EventStore, other_tenant: Tenant) -> None:
    _, owner = provision(settings, identity_store, seats=2)
    a, b = (Member(other_tenant, Role.VIEWER, f"{n}@{other_tenant.slug}.example.test") for n in "ab")
    sent_a = (await api.post("/v1/invitations", json={"email": f"a@{other_tenant.slug}.example.test",
                                                      "role": "viewer"}, headers=owner)).json()
    joined = (await api.post("/v1/invitations/accept", json={"token": sent_a["token"]}, headers=a.headers)).json()
    await api.patch(f"/v1/members/{joined['membership_id']}", json={"status": "suspended"}, headers=owner)
    sent_b = (await api.post("/v1/invitations", json={"email": f"b@{other_tenant.slug}.example.test",
                                                      "role": "viewer"}, headers=owner)).json()
    assert (await api.post("/v1/invitations/accept", json={"token": sent_b["token"]},
                           headers=b.headers)).status_code == 200

    response = await api.patch(f"/v1/members/{joined['membership_id']}", json={"status": "active",
                                                                                "role": "analyst"}, headers=owner)
    member = (await api.get(f"/v1/members/{joined['membership_id']}", headers=owner)).json()

    assert (response.status_code, response.json()["error"]["code"]) == (422, "seat_limit")
    assert (member["role"], member["status"]) == ("viewer", "suspended"), "all or nothing: the role did not change"


# ---- the role matrix: one allowed and one denied call per role ---------------------------------------------------

Call = Callable[[Client, Tenant, dict[str, str]], Awaitable[Response]]


async def list_members(api: Client, tenant: Tenant, headers: dict[str, str]) -> Response:
    return await api.get("/v1/members", headers=headers)


async def me(api: Client, tenant: Tenant, headers: dict[str, str]) -> Response:
    return await api.get("/v1/users/me", headers=headers)


async def invite_viewer(api: Client, tenant: Tenant, headers: dict[str, str]) -> Response:
    return await api.post("/v1/invitations", json={"email": f"{uuid.uuid4().hex[:8]}@example.test",
                                                   "role": "viewer"}, headers=headers)


async def invite_owner(api: Client, tenant: Tenant, headers: dict[str, str]) -> Response:
    return await api.post("/v1/invitations", json={"email": f"{uuid.uuid4().hex[:8]}@example.test",
                                                   "role": "owner"}, headers=headers)


async def remove_someone(api: Client, tenant: Tenant, headers: dict[str, str]) -> Response:
    return await api.delete(f"/v1/members/{Member(tenant, Role.READ_ONLY).id}", headers=headers)


async def remove_self_as_last_admin(api: Client, tenant: Tenant, headers: dict[str, str]) -> Response:
    return await api.delete(f"/v1/members/{membership_id(tenant.workspace_id, tenant.user_id)}", headers=headers)


async def list_issues(api: Client, tenant: Tenant, headers: dict[str, str]) -> Response:
    return await api.get("/v1/issues", headers=headers)


async def open_issue(api: Client, tenant: Tenant, headers: dict[str, str]) -> Response:
    return await api.post("/v1/issues", json={"title": "Disk full"}, headers=headers)


async def read_audit_log(api: Client, tenant: Tenant, headers: dict[str, str]) -> Response:
    return await api.get("/v1/audit-log", headers=headers)


async def read_retention(api: Client, tenant: Tenant, headers: dict[str, str]) -> Response:
    return await api.get("/v1/settings/data-retention", headers=headers)


# Each allowed call needs a scope the role holds (except read_only and executive, whose read scopes have no
# routes yet: their allowed call is /v1/users/me), and each denied call one it lacks.
MATRIX: list[tuple[Role, Call, Call, int]] = [
    (Role.READ_ONLY, me, list_issues, 403),
    (Role.VIEWER, list_issues, open_issue, 403),
    (Role.EXECUTIVE, me, list_issues, 403),
    (Role.ANALYST, open_issue, list_members, 403),
    (Role.SECURITY_ADMIN, read_audit_log, open_issue, 403),
    (Role.COMPLIANCE_ADMIN, read_retention, remove_someone, 403),
    (Role.TENANT_ADMIN, invite_viewer, invite_owner, 403),
    (Role.OWNER, invite_owner, remove_self_as_last_admin, 422),
]


@pytest.mark.parametrize(("role", "allowed", "denied", "denied_status"), MATRIX,
                         ids=[role.value for role, *_ in MATRIX])
async def test_role_matrix(api: Client, tenant: Tenant, role: Role, allowed: Call, denied: Call,
                           denied_status: int) -> None:
    headers = tenant.headers(Role.OWNER) if role is Role.OWNER else Member(tenant, role).headers

    ok = await allowed(api, tenant, headers)
    refused = await denied(api, tenant, headers)

    assert ok.status_code in (200, 201, 204), ok.text
    assert refused.status_code == denied_status, refused.text
