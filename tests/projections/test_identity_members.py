"""The `identity` projection over member, invitation, profile and organization events: the rows it writes,
and redelivery changes nothing (every write is guarded by the stream version)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from adapters.postgres import connect, create_pool, writer_transaction
from adapters.settings import Settings
from domain.events import DomainEvent
from domain.identity import invitation as inv
from domain.identity import organization as org
from domain.identity import user as users
from domain.identity import workspace as ws
from domain.identity.events import Plan
from domain.identity.roles import Role
from domain.identity.user import ProfileEdit
from domain.identity.workspace import Organization
from domain.ids import OrganizationId, UserId, WorkspaceId, render
from projections.identity import projector as identity
from tests.builders import T1, meta
from tests.workers.pipeline import isolated

pytestmark = pytest.mark.postgres

WS = uuid.UUID("01949a3c-0000-7000-8000-0000000000aa")
WS_ID = WorkspaceId(render("ws", WS))
ORG = uuid.UUID("01949a3c-0000-7000-8000-0000000000ab")
OWNER_UUID, BOB_UUID = uuid.UUID(int=1), uuid.UUID(int=2)
OWNER, BOB = UserId(render("usr", OWNER_UUID)), UserId(render("usr", BOB_UUID))
INV = uuid.UUID("01949a3c-0000-7000-8000-0000000000ac")
ZONES = frozenset({"UTC", "Asia/Tokyo"})


def history() -> list[DomainEvent]:
    m = meta(workspace_id=WS_ID)
    events: list[DomainEvent] = []

    def ws_apply(new: list[Any], state: Any) -> Any:
        events.extend(new)
        for event in new:
            state = ws.evolve(state, event)
        return state

    events.append(org.provision_organization(organization_id=ORG, slug="acme", name="Acme", plan=Plan.GROWTH,
                                             seats_total=5, meta=m))
    events.append(users.register_user(user_id=OWNER_UUID, email="owner@example.com", meta=m))
    bob = users.evolve(None, users.register_user(user_id=BOB_UUID, email="bob@example.com", meta=m))
    events.append(users.register_user(user_id=BOB_UUID, email="bob@example.com", meta=m))
    organization = Organization(id=OrganizationId(render("org", ORG)), slug="acme", name="Acme")
    state = ws_apply(ws.provision_workspace(workspace_id=WS, slug="acme", name="Acme", organization=organization,
                                            owner_user_id=OWNER, meta=m, plan=Plan.GROWTH, seats_total=5,
                                            timezone="Asia/Tokyo"), None)
    sent = inv.send_invitation(None, invitation_id=INV, email="bob@example.com", role=Role.VIEWER,
                               token_hash="a" * 64, meta=m)
    resent = inv.resend_invitation(inv.evolve(None, sent), "b" * 64, meta(T1 + timedelta(days=1), WS_ID))
    accepted = inv.accept_invitation(inv.evolve(inv.evolve(None, sent), resent), token_hash="a" * 64, user_id=BOB,
                                     user_email="bob@example.com", meta=m)
    events += [sent, resent, accepted]
    state = ws_apply(ws.add_member(state, BOB, Role.VIEWER, m), state)
    state = ws_apply(ws.change_member_role(state, BOB, Role.ANALYST, Role.OWNER, m), state)
    state = ws_apply(ws.suspend_member(state, BOB, Role.OWNER, m), state)
    state = ws_apply(ws.reactivate_member(state, BOB, Role.OWNER, m), state)
    state = ws_apply(ws.remove_member(state, BOB, Role.OWNER, m), state)
    state = ws_apply(ws.add_member(state, BOB, Role.READ_ONLY, m), state)  # re-joins after removal
    events += users.update_profile(bob, ProfileEdit(name="Bob B", timezone="Asia/Tokyo", locale="ja"), m,
                                   timezones=ZONES)
    second = inv.send_invitation(None, invitation_id=uuid.UUID(int=9), email="eve@example.com", role=Role.VIEWER,
                                 token_hash="c" * 64, meta=m)
    events += [second, *inv.revoke_invitation(inv.evolve(None, second), m)]
    ws_apply(ws.offboard_workspace(state, m), state)
    events += org.offboard_organization(org.evolve(None, events[0]), m)  # type: ignore[arg-type]
    return events


def snapshot(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                for table in identity.TABLES}


async def project(settings: Settings, events: list[DomainEvent]) -> None:
    pool = create_pool(settings, min_size=1, max_size=1, name="test-identity")
    await pool.open()
    try:
        async with writer_transaction(pool) as conn:
            await identity.project(conn, [(i + 1, e) for i, e in enumerate(events)])  # type: ignore[misc]
    finally:
        await pool.close()


async def test_member_invitation_profile_and_organization_rows(settings: Settings) -> None:
    with isolated(settings) as s:
        await project(s, history())

        with psycopg.connect(s.database_url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{s.database_schema}"')
            member = conn.execute("SELECT role, status FROM memberships WHERE user_id = %s", (BOB,)).fetchone()
            invitations = conn.execute("SELECT email, status, token_hash, accepted_user_id FROM invitations"
                                       " ORDER BY email").fetchall()
            user = conn.execute("SELECT name, timezone, locale FROM users WHERE id = %s", (BOB,)).fetchone()
            workspace = conn.execute("SELECT status, timezone FROM workspaces").fetchone()
            organization = conn.execute("SELECT plan, seats_total, status FROM organizations").fetchone()

    assert member == ("read_only", "active")
    assert invitations == [("bob@example.com", "accepted", "b" * 64, BOB), ("eve@example.com", "revoked", "c" * 64,
                                                                             None)]
    assert user == ("Bob B", "Asia/Tokyo", "ja")
    assert workspace == ("offboarded", "Asia/Tokyo")
    assert organization == ("growth", 5, "cancelled")


async def test_redelivering_every_event_changes_nothing(settings: Settings) -> None:
    events = history()
    with isolated(settings) as s:
        await project(s, events)
        once = snapshot(s)

        await project(s, events)
        await project(s, events[len(events) // 2:])

        assert snapshot(s) == once


async def test_a_removed_member_is_kept_as_removed(settings: Settings) -> None:
    events = history()
    cut = next(i for i, e in enumerate(events) if type(e).__name__ == "MemberRemoved") + 1
    with isolated(settings) as s:
        await project(s, events[:cut])
        conn = await connect(s)
        async with conn:
            cur = await conn.execute("SELECT status FROM memberships WHERE user_id = %s", (BOB,))
            assert await cur.fetchone() == {"status": "removed"}
