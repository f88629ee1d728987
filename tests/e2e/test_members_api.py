"""Members through the public API: roster, role changes effective at once, suspend, remove, last admin."""

from __future__ import annotations

import pytest

from commands.members import membership_id
from domain.identity.roles import SCOPES_BY_ROLE, Role
from tests.e2e.conftest import Tenant
from tests.e2e.members_helpers import Client, Member, owner_headers

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


async def test_the_roster_lists_members_with_their_user_and_filters_by_role_and_status(
        api: Client, tenant: Tenant) -> None:
    analyst = Member(tenant, Role.ANALYST, f"ann@{tenant.slug}.example.test")
    Member(tenant, Role.VIEWER)

    everyone = (await api.get("/v1/members", headers=owner_headers(tenant))).json()
    analysts = (await api.get("/v1/members?role=analyst", headers=owner_headers(tenant))).json()
    suspended = (await api.get("/v1/members?status=suspended", headers=owner_headers(tenant))).json()

    assert everyone["page"]["total"] == 3 and len(everyone["data"]) == 3
    assert [m["id"] for m in analysts["data"]] == [analyst.id]
    assert analysts["data"][0] | {"joined_at": None, "updated_at": None} == {
        "id": analyst.id, "user_id": analyst.user_id, "email": f"ann@{tenant.slug}.example.test", "name": "ann",
        "avatar_url": None, "role": "analyst", "status": "active", "joined_at": None, "updated_at": None}
    assert suspended["data"] == []


async def test_the_roster_pages_with_a_cursor(api: Client, tenant: Tenant) -> None:
    for role in (Role.VIEWER, Role.ANALYST, Role.READ_ONLY):
        Member(tenant, role)

    first = (await api.get("/v1/members?limit=2", headers=owner_headers(tenant))).json()
    second = (await api.get(f"/v1/members?limit=2&cursor={first['page']['next_cursor']}",
                            headers=owner_headers(tenant))).json()

    assert (len(first["data"]), first["page"]["has_more"], first["page"]["total"]) == (2, True, 4)
    assert (len(second["data"]), second["page"]["has_more"]) == (2, False)
    assert not {m["id"] for m in first["data"]} & {m["id"] for m in second["data"]}


async def test_a_bad_filter_names_the_field(api: Client, tenant: Tenant) -> None:
    response = await api.get("/v1/members?status=gone", headers=owner_headers(tenant))

    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "status"


async def test_a_role_change_applies_to_the_members_very_next_request_with_the_old_token(
        api: Client, tenant: Tenant) -> None:
    member = Member(tenant, Role.ANALYST)
    assert (await api.post("/v1/issues", json={"title": "before"}, headers=member.headers)).status_code == 201

    changed = await api.patch(f"/v1/members/{member.id}", json={"role": "viewer"}, headers=owner_headers(tenant))
    write = await api.post("/v1/issues", json={"title": "after"}, headers=member.headers)
    read = await api.get("/v1/issues", headers=member.headers)

    assert changed.status_code == 200 and changed.json()["role"] == "viewer"
    assert write.status_code == 403
    assert read.status_code == 200


async def test_a_promotion_never_widens_an_old_token_beyond_what_it_was_minted_with(
        api: Client, tenant: Tenant) -> None:
    member = Member(tenant, Role.VIEWER)

    await api.patch(f"/v1/members/{member.id}", json={"role": "analyst"}, headers=owner_headers(tenant))
    me = await api.get("/v1/users/me", headers=member.headers)
    write = await api.post("/v1/issues", json={"title": "x"}, headers=member.headers)

    assert me.json()["role"] == "analyst"
    assert write.status_code == 403, "the viewer token never carried issues:write"


async def test_removing_a_member_refuses_their_token_on_the_very_next_request(api: Client, tenant: Tenant) -> None:
    member = Member(tenant, Role.ANALYST)
    assert (await api.get("/v1/issues", headers=member.headers)).status_code == 200

    removed = await api.delete(f"/v1/members/{member.id}", headers=owner_headers(tenant))
    after = await api.get("/v1/issues", headers=member.headers)
    gone = await api.get(f"/v1/members/{member.id}", headers=owner_headers(tenant))

    assert removed.status_code == 204
    assert after.status_code == 401 and after.json()["error"]["code"] == "unauthorized"
    assert gone.status_code == 404


async def test_a_suspended_member_is_refused_until_reactivated(api: Client, tenant: Tenant) -> None:
    member = Member(tenant, Role.ANALYST)

    suspended = await api.patch(f"/v1/members/{member.id}", json={"status": "suspended"},
                                headers=owner_headers(tenant))
    refused = await api.get("/v1/issues", headers=member.headers)
    reactivated = await api.patch(f"/v1/members/{member.id}", json={"status": "active"},
                                  headers=owner_headers(tenant))
    again = await api.get("/v1/issues", headers=member.headers)

    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert refused.status_code == 401
    assert reactivated.json()["status"] == "active"
    assert again.status_code == 200


async def test_the_last_admin_cannot_be_removed_suspended_or_demoted(api: Client, tenant: Tenant) -> None:
    owner = owner_headers(tenant)
    owner_member = membership_id(tenant.workspace_id, tenant.user_id)

    answers = [await api.delete(f"/v1/members/{owner_member}", headers=owner),
               await api.patch(f"/v1/members/{owner_member}", json={"status": "suspended"}, headers=owner),
               await api.patch(f"/v1/members/{owner_member}", json={"role": "analyst"}, headers=owner)]

    assert [(r.status_code, r.json()["error"]["code"]) for r in answers] == [(422, "last_admin")] * 3
    assert (await api.get("/v1/members", headers=owner)).status_code == 200


async def test_a_tenant_admin_cannot_touch_the_owner_but_with_a_second_admin_the_owner_may_step_down(
        api: Client, tenant: Tenant) -> None:
    admin = Member(tenant, Role.TENANT_ADMIN)
    owner_member = membership_id(tenant.workspace_id, tenant.user_id)

    by_admin = await api.patch(f"/v1/members/{owner_member}", json={"role": "analyst"}, headers=admin.headers)
    by_owner = await api.patch(f"/v1/members/{owner_member}", json={"role": "analyst"},
                               headers=owner_headers(tenant))
    roster = await api.get("/v1/members", headers=admin.headers)

    assert (by_admin.status_code, by_admin.json()["error"]["code"]) == (403, "forbidden")
    assert by_owner.status_code == 200 and by_owner.json()["role"] == "analyst"
    assert roster.status_code == 200


async def test_nobody_grants_a_role_above_their_own(api: Client, tenant: Tenant) -> None:
    admin = Member(tenant, Role.TENANT_ADMIN)
    viewer = Member(tenant, Role.VIEWER)

    promote = await api.patch(f"/v1/members/{viewer.id}", json={"role": "owner"}, headers=admin.headers)
    invite = await api.post("/v1/invitations", json={"email": "boss@example.test", "role": "owner"},
                            headers=admin.headers)
    allowed = await api.patch(f"/v1/members/{viewer.id}", json={"role": "tenant_admin"}, headers=admin.headers)

    assert [(r.status_code, r.json()["error"]["code"]) for r in (promote, invite)] == [(403, "forbidden")] * 2
    assert allowed.status_code == 200 and allowed.json()["role"] == "tenant_admin"


async def test_changing_status_needs_members_admin_and_a_body_needs_a_field(api: Client, tenant: Tenant) -> None:
    member = Member(tenant, Role.VIEWER)
    writer_only = tenant.headers(Role.OWNER, SCOPES_BY_ROLE[Role.OWNER] - {"members:admin"})

    status = await api.patch(f"/v1/members/{member.id}", json={"status": "suspended"}, headers=writer_only)
    role = await api.patch(f"/v1/members/{member.id}", json={"role": "analyst"}, headers=writer_only)
    empty = await api.patch(f"/v1/members/{member.id}", json={}, headers=writer_only)
    unknown = await api.patch(f"/v1/members/{member.id}", json={"rank": 3}, headers=writer_only)

    assert (status.status_code, status.json()["error"]["details"]) == (403, {"required_scope": "members:admin"})
    assert role.status_code == 200
    assert (empty.status_code, unknown.status_code) == (400, 400)


async def test_members_of_another_workspace_are_not_found(api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    stranger = Member(other_tenant, Role.ANALYST)

    answers = [await api.get(f"/v1/members/{stranger.id}", headers=owner_headers(tenant)),
               await api.patch(f"/v1/members/{stranger.id}", json={"role": "viewer"}, headers=owner_headers(tenant)),
               await api.delete(f"/v1/members/{stranger.id}", headers=owner_headers(tenant)),
               await api.get("/v1/members/mem_nonsense", headers=owner_headers(tenant))]

    assert [r.status_code for r in answers] == [404] * 4
    assert (await api.get("/v1/issues", headers=stranger.headers)).status_code == 200


async def test_openapi_documents_the_identity_error_codes(api: Client) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]

    assert "last_admin" in paths["/v1/members/{member_id}"]["delete"]["responses"]["422"]["description"]
    assert "seat_limit" in paths["/v1/invitations"]["post"]["responses"]["422"]["description"]
    assert "invitation_expired" in paths["/v1/invitations/accept"]["post"]["responses"]["422"]["description"]
    assert paths["/v1/members"]["get"]["security"] == [{"BearerAuth": []}]
    assert {"/v1/roles", "/v1/users/me", "/v1/invitations/{invitation_id}/resend"} <= set(paths)
