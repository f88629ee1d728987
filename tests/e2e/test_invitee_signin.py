"""A person invited by email gets in through `POST /v1/auth/exchange` with `invitation_token`, even when
unknown so far: one append registers them, links the Clerk id, accepts the invitation and adds the member."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.event_store import EventStore
from adapters.settings import Settings
from cli.main import main
from commands.identity import user_stream
from commands.members import invitation_stream, membership_id, new_invitation_token, token_hash
from domain.events import Actor, ActorKind, Meta
from domain.identity.invitation import send_invitation
from domain.identity.roles import Role
from domain.ids import WorkspaceId, parse, render
from tests.e2e.conftest import Tenant
from tests.e2e.members_helpers import Member, invite, owner_headers
from tests.e2e.signin_support import (
    SigningKey,
    bearer,
    clerk_fixtures,
    client,
    exchange,
    sub_of,
)
from tests.e2e.test_me_roles_seats import provision

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
KEY = SigningKey("invitee-key")


jwks, clerk_api = clerk_fixtures(KEY, "invitee")


def newcomer() -> tuple[str, str]:
    """An email nobody has used and its Clerk-like user id."""
    email = f"new-{uuid.uuid4().hex[:10]}@example.test"
    return email, "user_" + hashlib.sha256(email.encode()).hexdigest()[:20]


def user_events(store: EventStore, email: str) -> list[Any]:
    return list(store.load(user_stream(email)))


def invitation_version(store: EventStore, invitation_id: str) -> int:
    stream_id = parse("inv", invitation_id)
    assert stream_id is not None
    return len(store.load(stream_id))


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_a_brand_new_invitee_signs_in_with_the_invitation_and_works_at_once(
        clerk_api: Client, tenant: Tenant) -> None:
    email, sub = newcomer()
    sent = await invite(clerk_api, tenant, email.upper(), "analyst")
    refused = await exchange(clerk_api, KEY.token(sub=sub, email=email))

    response = await exchange(clerk_api, KEY.token(sub=sub, email=email), invitation_token=sent["token"])

    assert error(refused) == (403, "forbidden")  # without the invitation nothing changed
    body = response.json()
    assert response.status_code == 200, response.text
    assert body["workspace_id"] == tenant.workspace_id and "issues:write" in body["scope"].split()
    assert body["refresh_token"].startswith("clp_refresh_") and response.headers["cache-control"] == "no-store"
    assert "x-causeloop-consistency" not in response.headers
    assert (await clerk_api.get("/v1/issues", headers=bearer(body))).status_code == 200
    me = (await clerk_api.get("/v1/users/me", headers=bearer(body))).json()
    assert (me["email"], me["clerk_user_id"], me["role"]) == (email, sub, "analyst")
    members = (await clerk_api.get("/v1/members?role=analyst", headers=owner_headers(tenant))).json()
    assert [(m["user_id"], m["email"]) for m in members["data"]] == [(me["id"], email)]
    listed = (await clerk_api.get(f"/v1/invitations/{sent['id']}", headers=owner_headers(tenant))).json()
    assert (listed["status"], listed["accepted_user_id"]) == ("accepted", me["id"])
    later = await exchange(clerk_api, KEY.token(sub=sub))  # the Clerk id is linked: no email needed any more
    assert later.status_code == 200 and later.json()["workspace_id"] == tenant.workspace_id


async def test_the_registration_link_acceptance_and_membership_are_one_append(
        clerk_api: Client, tenant: Tenant, identity_store: EventStore) -> None:
    email, sub = newcomer()
    sent = await invite(clerk_api, tenant, email, "viewer")

    response = await exchange(clerk_api, KEY.token(sub=sub, email=email), invitation_token=sent["token"])

    assert response.status_code == 200, response.text
    user_id = render("usr", user_stream(email))
    workspace_stream = parse("ws", tenant.workspace_id)
    assert workspace_stream is not None
    registered, linked = user_events(identity_store, email)
    accepted = identity_store.load(invitation_stream(tenant.workspace_id, email))[-1]
    added = identity_store.load(workspace_stream)[-1]
    events = (registered, linked, accepted, added)
    assert [type(e).__name__ for e in events] == [
        "UserRegistered", "UserExternalIdentityLinked", "InvitationAccepted", "MemberAdded"]
    assert len({(e.occurred_at, e.correlation_id) for e in events}) == 1  # one decision, one append
    assert {e.workspace_id for e in events} == {tenant.workspace_id}
    assert {e.actor.id for e in events} == {user_id} and getattr(added, "user_id", None) == user_id


async def test_a_member_of_another_workspace_joins_with_the_invitation(
        clerk_api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    sent = await invite(clerk_api, tenant, other_tenant.owner_email, "viewer")
    subject = KEY.token(sub=sub_of(other_tenant), email=other_tenant.owner_email)

    response = await exchange(clerk_api, subject, invitation_token=sent["token"],
                              workspace_id=tenant.workspace_id)
    home = await exchange(clerk_api, subject, workspace_id=other_tenant.workspace_id)

    body = response.json()
    assert response.status_code == 200, response.text
    assert body["workspace_id"] == tenant.workspace_id and "issues:write" not in body["scope"].split()
    me = (await clerk_api.get("/v1/users/me", headers=bearer(body))).json()
    assert (me["id"], me["role"], me["membership_id"]) == (
        other_tenant.user_id, "viewer", membership_id(tenant.workspace_id, other_tenant.user_id))
    assert (await clerk_api.get("/v1/issues", headers=bearer(body))).status_code == 200
    assert home.status_code == 200 and home.json()["workspace_id"] == other_tenant.workspace_id


async def test_an_invitation_for_another_email_is_refused_and_records_nothing(
        clerk_api: Client, tenant: Tenant, identity_store: EventStore) -> None:
    email, sub = newcomer()
    sent = await invite(clerk_api, tenant, "someone-else@example.test")

    wrong = await exchange(clerk_api, KEY.token(sub=sub, email=email), invitation_token=sent["token"])
    no_email = await exchange(clerk_api, KEY.token(sub=sub), invitation_token=sent["token"])

    assert error(wrong) == (403, "forbidden") and error(no_email) == (403, "forbidden")
    assert user_events(identity_store, email) == [] and invitation_version(identity_store, sent["id"]) == 1
    pending = (await clerk_api.get(f"/v1/invitations/{sent['id']}", headers=owner_headers(tenant))).json()
    assert pending["status"] == "pending"


async def test_another_workspace_id_than_the_invitations_is_refused(
        clerk_api: Client, tenant: Tenant, other_tenant: Tenant, identity_store: EventStore) -> None:
    email, sub = newcomer()
    sent = await invite(clerk_api, tenant, email)

    response = await exchange(clerk_api, KEY.token(sub=sub, email=email), invitation_token=sent["token"],
                              workspace_id=other_tenant.workspace_id)

    assert error(response) == (403, "forbidden")
    assert user_events(identity_store, email) == [] and invitation_version(identity_store, sent["id"]) == 1


async def test_a_used_invitation_is_invalid_transition(clerk_api: Client, tenant: Tenant) -> None:
    email, sub = newcomer()
    sent = await invite(clerk_api, tenant, email)
    first = await exchange(clerk_api, KEY.token(sub=sub, email=email), invitation_token=sent["token"])

    again = await exchange(clerk_api, KEY.token(sub=sub, email=email), invitation_token=sent["token"])

    assert first.status_code == 200 and error(again) == (422, "invalid_transition")


async def test_a_revoked_invitation_is_invalid_transition_and_records_nothing(
        clerk_api: Client, tenant: Tenant, identity_store: EventStore) -> None:
    email, sub = newcomer()
    sent = await invite(clerk_api, tenant, email)
    assert (await clerk_api.delete(f"/v1/invitations/{sent['id']}", headers=owner_headers(tenant))).status_code == 204

    response = await exchange(clerk_api, KEY.token(sub=sub, email=email), invitation_token=sent["token"])

    assert error(response) == (422, "invalid_transition") and user_events(identity_store, email) == []


async def test_an_expired_invitation_is_invitation_expired(
        clerk_api: Client, tenant: Tenant, identity_store: EventStore) -> None:
    email, sub = newcomer()
    stream_id = invitation_stream(tenant.workspace_id, email)
    token = new_invitation_token(stream_id)
    eight_days_ago = Meta(workspace_id=WorkspaceId(tenant.workspace_id), now=datetime.now(UTC) - timedelta(days=8),
                          actor=Actor(kind=ActorKind.USER, id=tenant.user_id))
    identity_store.append([send_invitation(None, invitation_id=stream_id, email=email, role=Role.VIEWER,
                                           token_hash=token_hash(token), meta=eight_days_ago)])

    response = await exchange(clerk_api, KEY.token(sub=sub, email=email), invitation_token=token)

    assert error(response) == (422, "invitation_expired") and user_events(identity_store, email) == []


async def test_a_full_workspace_is_seat_limit_and_registers_nobody(
        clerk_api: Client, settings: Settings, identity_store: EventStore, other_tenant: Tenant) -> None:
    _, owner = provision(settings, identity_store, seats=2)
    email, sub = newcomer()
    first = Member(other_tenant, Role.VIEWER, f"a@{other_tenant.slug}.example.test")
    sent_a = await invite(clerk_api, other_tenant, f"a@{other_tenant.slug}.example.test", "viewer", headers=owner)
    sent_b = await invite(clerk_api, other_tenant, email, "viewer", headers=owner)
    joined = await clerk_api.post("/v1/invitations/accept", json={"token": sent_a["token"]}, headers=first.headers)

    full = await exchange(clerk_api, KEY.token(sub=sub, email=email), invitation_token=sent_b["token"])

    assert joined.status_code == 200 and error(full) == (422, "seat_limit")
    assert user_events(identity_store, email) == []


@pytest.mark.parametrize(("token", "expected"), [
    ("nonsense", (404, "not_found")),
    ("clp_inv_01KV1PX3NR96XJRGD48NNHH431_x", (404, "not_found")),
    ("", (400, "validation_error")),
])
async def test_a_malformed_or_unknown_invitation_token_is_like_accept(
        clerk_api: Client, token: str, expected: tuple[int, str]) -> None:
    email, sub = newcomer()

    response = await exchange(clerk_api, KEY.token(sub=sub, email=email), invitation_token=token)

    assert error(response) == expected


async def test_the_subject_token_is_verified_before_the_invitation_is_looked_at(
        clerk_api: Client, tenant: Tenant, identity_store: EventStore) -> None:
    email, sub = newcomer()
    sent = await invite(clerk_api, tenant, email)
    forged = SigningKey("invitee-key")  # same kid, another key

    response = await exchange(clerk_api, forged.token(sub=sub, email=email), invitation_token=sent["token"])

    assert error(response) == (401, "invalid_grant")
    assert user_events(identity_store, email) == [] and invitation_version(identity_store, sent["id"]) == 1


async def test_the_readme_flow_causeloop_token_clerk_invitee_registers_nobody_until_the_exchange(
        clerk_api: Client, settings: Settings, tenant: Tenant, identity_store: EventStore, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    email = f"shell-{uuid.uuid4().hex[:8]}@example.test"
    environ = {"DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema,
               "JWT_SECRET": settings.jwt_secret, "DATA_DIR": str(tmp_path)}
    sent = await invite(clerk_api, tenant, email, "viewer")

    assert main(["token", "--clerk", "--invitee", "--email", email], environ) == 0
    subject_token = capsys.readouterr().out.strip()
    assert user_events(identity_store, email) == []  # nobody registered, no "default" workspace membership
    async with client(settings, clerk_jwks_url="", data_dir=str(tmp_path)) as dev_api:
        response = await exchange(dev_api, subject_token, invitation_token=sent["token"])
        issues = await dev_api.get("/v1/issues", headers=bearer(response.json()))

    assert response.status_code == 200, response.text
    assert response.json()["workspace_id"] == tenant.workspace_id and issues.status_code == 200
    assert main(["token", "--invitee", "--email", email], environ) == 2  # only with --clerk


async def test_openapi_documents_invitation_token(clerk_api: Client) -> None:
    schema = (await clerk_api.get("/openapi.json")).json()
    body = schema["paths"]["/v1/auth/exchange"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    fields = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]["properties"]

    field = fields["invitation_token"]
    assert "clp_inv_" in field["description"] and (field["minLength"], field["maxLength"]) == (1, 200)
    assert {"404", "422"} <= set(schema["paths"]["/v1/auth/exchange"]["post"]["responses"])


async def test_a_clerk_identity_linked_elsewhere_cannot_take_an_invitation(
        clerk_api: Client, tenant: Tenant, other_tenant: Tenant, identity_store: EventStore) -> None:
    linked = await exchange(clerk_api, KEY.token(sub=sub_of(other_tenant), email=other_tenant.owner_email))
    email, sub = newcomer()
    for_newcomer = await invite(clerk_api, tenant, email)
    for_owner = await invite(clerk_api, tenant, other_tenant.owner_email)

    same_sub_new_email = await exchange(clerk_api, KEY.token(sub=sub_of(other_tenant), email=email),
                                        invitation_token=for_newcomer["token"])
    same_email_new_sub = await exchange(clerk_api, KEY.token(sub=sub, email=other_tenant.owner_email),
                                        invitation_token=for_owner["token"])

    assert linked.status_code == 200
    assert error(same_sub_new_email) == (403, "forbidden") and error(same_email_new_sub) == (403, "forbidden")
    assert user_events(identity_store, email) == []
    assert invitation_version(identity_store, for_newcomer["id"]) == 1
    assert invitation_version(identity_store, for_owner["id"]) == 1
