"""Invitations through the public API: token once, 7 days, single use, the invitee only, seats, resend, revoke."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.event_store import EventStore
from adapters.settings import Settings
from commands.members import invitation_stream, new_invitation_token, token_hash
from domain.events import Actor, ActorKind, Meta
from domain.identity.invitation import send_invitation
from domain.identity.roles import Role
from domain.ids import WorkspaceId, render
from tests.e2e.conftest import Tenant
from tests.e2e.members_helpers import Client, Member, invite, owner_headers

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


def invitee(other: Tenant, name: str = "dana") -> Member:
    """Someone signed in elsewhere (a member of another workspace), whom `tenant` invites."""
    return Member(other, Role.VIEWER, f"{name}@{other.slug}.example.test")


async def test_an_invitation_returns_its_token_once_and_lists_without_it(
        api: Client, tenant: Tenant, settings: Settings) -> None:
    sent = await invite(api, tenant, "Erin@Example.test", "analyst")
    listed = (await api.get("/v1/invitations", headers=owner_headers(tenant))).json()
    one = (await api.get(f"/v1/invitations/{sent['id']}", headers=owner_headers(tenant))).json()

    assert sent["id"].startswith("inv_") and sent["token"].startswith("clp_inv_")
    assert sent["accept_url"] == f"{settings.app_url}/invitations/accept?token={sent['token']}"
    assert (sent["email"], sent["role"], sent["status"], sent["expired"]) == ("erin@example.test", "analyst",
                                                                               "pending", False)
    created = datetime.fromisoformat(sent["created_at"])
    assert datetime.fromisoformat(sent["expires_at"]) - created == timedelta(days=7)
    assert sent["invited_by"] == tenant.user_id
    assert [i["id"] for i in listed["data"]] == [sent["id"]] and "token" not in listed["data"][0]
    assert "token" not in one and "token_hash" not in one


async def test_the_invitee_accepts_once_and_is_a_member_with_the_role(
        api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    dana = invitee(other_tenant)
    sent = await invite(api, tenant, f"dana@{other_tenant.slug}.example.test", "analyst")

    accepted = await api.post("/v1/invitations/accept", json={"token": sent["token"]}, headers=dana.headers)
    again = await api.post("/v1/invitations/accept", json={"token": sent["token"]}, headers=dana.headers)
    roster = (await api.get("/v1/members?role=analyst", headers=owner_headers(tenant))).json()
    listed = (await api.get("/v1/invitations?status=accepted", headers=owner_headers(tenant))).json()

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["workspace_id"] == tenant.workspace_id and accepted.json()["role"] == "analyst"
    assert (again.status_code, again.json()["error"]["code"]) == (422, "invalid_transition")
    assert [m["user_id"] for m in roster["data"]] == [dana.user_id]
    assert [(i["id"], i["accepted_user_id"]) for i in listed["data"]] == [(sent["id"], dana.user_id)]


async def test_someone_else_cannot_use_the_invitation(api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    sent = await invite(api, tenant, "frank@example.test")
    mallory = invitee(other_tenant, "mallory")

    response = await api.post("/v1/invitations/accept", json={"token": sent["token"]}, headers=mallory.headers)

    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")


@pytest.mark.parametrize("token", ["nonsense", "clp_inv_01KV1PX3NR96XJRGD48NNHH431_x", ""])
async def test_an_unknown_or_malformed_token_is_not_found_or_invalid(
        api: Client, tenant: Tenant, token: str) -> None:
    response = await api.post("/v1/invitations/accept", json={"token": token}, headers=owner_headers(tenant))

    assert response.status_code == (400 if token == "" else 404)


async def test_a_tampered_token_of_a_real_invitation_is_not_found(api: Client, tenant: Tenant,
                                                                 other_tenant: Tenant) -> None:
    dana = invitee(other_tenant)
    sent = await invite(api, tenant, f"dana@{other_tenant.slug}.example.test")

    response = await api.post("/v1/invitations/accept", json={"token": sent["token"][:-2] + "zz"},
                              headers=dana.headers)

    assert response.status_code == 404


async def test_an_expired_invitation_is_refused(api: Client, tenant: Tenant, other_tenant: Tenant,
                                               identity_store: EventStore) -> None:
    dana = invitee(other_tenant)
    email = f"dana@{other_tenant.slug}.example.test"
    stream_id = invitation_stream(tenant.workspace_id, email)
    token = new_invitation_token(stream_id)
    eight_days_ago = Meta(workspace_id=WorkspaceId(tenant.workspace_id), now=datetime.now(UTC) - timedelta(days=8),
                          actor=Actor(kind=ActorKind.USER, id=tenant.user_id))
    identity_store.append([send_invitation(None, invitation_id=stream_id, email=email, role=Role.VIEWER,
                                           token_hash=token_hash(token), meta=eight_days_ago)])

    response = await api.post("/v1/invitations/accept", json={"token": token}, headers=dana.headers)

    assert (response.status_code, response.json()["error"]["code"]) == (422, "invitation_expired")
    listed = (await api.get(f"/v1/invitations/{render('inv', stream_id)}", headers=owner_headers(tenant))).json()
    assert listed["expired"] is True


async def test_resend_gives_a_new_token_and_the_original_still_works(
        api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    dana = invitee(other_tenant)
    sent = await invite(api, tenant, f"dana@{other_tenant.slug}.example.test")

    resent = await api.post(f"/v1/invitations/{sent['id']}/resend", headers=owner_headers(tenant))
    accepted = await api.post("/v1/invitations/accept", json={"token": sent["token"]}, headers=dana.headers)

    assert resent.status_code == 200 and resent.json()["token"] != sent["token"]
    assert resent.json()["id"] == sent["id"]
    assert accepted.status_code == 200


async def test_a_revoked_invitation_cannot_be_accepted(api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    dana = invitee(other_tenant)
    sent = await invite(api, tenant, f"dana@{other_tenant.slug}.example.test")

    revoked = await api.delete(f"/v1/invitations/{sent['id']}", headers=owner_headers(tenant))
    response = await api.post("/v1/invitations/accept", json={"token": sent["token"]}, headers=dana.headers)
    status = (await api.get(f"/v1/invitations/{sent['id']}", headers=owner_headers(tenant))).json()["status"]

    assert revoked.status_code == 204
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_transition")
    assert status == "revoked"


async def test_inviting_a_member_or_a_pending_email_is_a_conflict(api: Client, tenant: Tenant) -> None:
    member = Member(tenant, Role.VIEWER, f"gina@{tenant.slug}.example.test")
    await invite(api, tenant, "hal@example.test")

    existing = await api.post("/v1/invitations", json={"email": f"GINA@{tenant.slug}.example.test",
                                                       "role": "viewer"}, headers=owner_headers(tenant))
    pending = await api.post("/v1/invitations", json={"email": "hal@example.test", "role": "viewer"},
                             headers=owner_headers(tenant))

    assert member.user_id
    assert [(r.status_code, r.json()["error"]["code"]) for r in (existing, pending)] == [(409, "conflict")] * 2


async def test_a_bad_invitation_body_names_the_field(api: Client, tenant: Tenant) -> None:
    bad_role = await api.post("/v1/invitations", json={"email": "x@example.test", "role": "god"},
                              headers=owner_headers(tenant))
    bad_email = await api.post("/v1/invitations", json={"email": "not-an-email", "role": "viewer"},
                               headers=owner_headers(tenant))

    assert (bad_role.status_code, bad_role.json()["error"]["details"]["field"]) == (400, "role")
    assert (bad_email.status_code, bad_email.json()["error"]["details"]["field"]) == (400, "email")


async def test_invitations_of_another_workspace_are_not_found(api: Client, tenant: Tenant,
                                                             other_tenant: Tenant) -> None:
    theirs = await invite(api, other_tenant, "ivy@example.test")

    answers = [await api.get(f"/v1/invitations/{theirs['id']}", headers=owner_headers(tenant)),
               await api.post(f"/v1/invitations/{theirs['id']}/resend", headers=owner_headers(tenant)),
               await api.delete(f"/v1/invitations/{theirs['id']}", headers=owner_headers(tenant)),
               await api.get("/v1/invitations/inv_bogus", headers=owner_headers(tenant))]

    assert [r.status_code for r in answers] == [404] * 4
    assert (await api.get("/v1/invitations", headers=owner_headers(tenant))).json()["data"] == []
