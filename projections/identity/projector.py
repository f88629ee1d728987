"""Writes the `identity` read model: users, organizations, workspaces and memberships, one event at a time.

Identity events are rare (sign-ups, invitations, role changes), so clarity wins over batching here. Every
write is idempotent (guarded by the row's version), so a redelivered event changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, assert_never

import msgspec
from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from adapters.ids import keyed_uuid
from domain.identity.events import DEFAULT_PLAN, DEFAULT_SEATS, MemberAdded, UserRegistered, WorkspaceProvisioned
from domain.ids import render
from projections.identity.members import HANDLED as MEMBERS_HANDLED
from projections.identity.members import apply_members

NAME = "identity"
VERSION = 1
CATEGORIES = frozenset({"workspace", "user", "invitation", "organization"})
TABLES = ("users", "organizations", "workspaces", "memberships", "invitations")
BaseEvent = WorkspaceProvisioned | MemberAdded | UserRegistered

Conn = AsyncConnection[dict[str, Any]]


def membership_id(workspace_id: str, user_id: str) -> str:
    """A membership's id is derived from its pair, so every writer names it the same way."""
    return render("mem", keyed_uuid("membership", workspace_id, user_id))


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Apply `batch` (in position order, already past the checkpoint) inside the caller's transaction."""
    for _, event in batch:
        if isinstance(event, WorkspaceProvisioned | MemberAdded | UserRegistered):
            await apply(conn, event)
        elif isinstance(event, MEMBERS_HANDLED):
            await apply_members(conn, event)


async def apply(conn: Conn, event: BaseEvent) -> None:
    match event:
        case UserRegistered():
            await conn.execute(
                "INSERT INTO users (id, email, name, created_at, updated_at, version) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING",
                (render("usr", event.originator_id), event.email, event.name, event.occurred_at, event.occurred_at,
                 event.originator_version))
        case WorkspaceProvisioned():
            plan = DEFAULT_PLAN if event.plan is msgspec.UNSET else event.plan
            seats = DEFAULT_SEATS if event.seats_total is msgspec.UNSET else event.seats_total
            await conn.execute(
                "INSERT INTO organizations (id, slug, name, plan, seats_total, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (event.organization_id, event.organization_slug, event.organization_name, plan.value, seats,
                 event.occurred_at))
            await conn.execute(
                "INSERT INTO workspaces (id, organization_id, slug, name, timezone, created_at, updated_at, version)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (render("ws", event.originator_id), event.organization_id, event.slug, event.name,
                 "UTC" if event.timezone is msgspec.UNSET else event.timezone, event.occurred_at,
                 event.occurred_at, event.originator_version))
        case MemberAdded():
            workspace_id = render("ws", event.originator_id)
            await conn.execute(
                "INSERT INTO memberships (workspace_id, id, user_id, role, status, joined_at, updated_at, version)"
                " VALUES (%s, %s, %s, %s, 'active', %s, %s, %s) ON CONFLICT (workspace_id, user_id) DO UPDATE"
                " SET role = excluded.role, status = 'active', joined_at = excluded.joined_at,"
                " updated_at = excluded.updated_at, version = excluded.version"
                " WHERE memberships.version < excluded.version",  # a removed member who joins again
                (workspace_id, membership_id(workspace_id, event.user_id), event.user_id, event.role,
                 event.occurred_at, event.occurred_at, event.originator_version))
            await _bump_workspace(conn, workspace_id, event.originator_version, event)
        case _:
            assert_never(event)


async def _bump_workspace(conn: Conn, workspace_id: str, version: int, event: BaseEvent) -> None:
    await conn.execute("UPDATE workspaces SET version = %s, updated_at = %s WHERE id = %s AND version < %s",
                       (version, event.occurred_at, workspace_id, version))
