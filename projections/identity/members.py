"""The `identity` projection's writes for member changes, invitations, profiles and operator provisioning.

Each write is guarded by the row's version (the stream version of the event), so a redelivery changes nothing.
"""

from __future__ import annotations

from typing import Any, assert_never

from psycopg import AsyncConnection

from domain.identity.events import (
    InvitationAccepted,
    InvitationResent,
    InvitationRevoked,
    InvitationSent,
    MemberReactivated,
    MemberRemoved,
    MemberRoleChanged,
    MemberSuspended,
    OrganizationOffboarded,
    OrganizationProvisioned,
    UserProfileUpdated,
    WorkspaceOffboarded,
)
from domain.ids import render

Conn = AsyncConnection[dict[str, Any]]
MembersEvent = (MemberRoleChanged | MemberSuspended | MemberReactivated | MemberRemoved | WorkspaceOffboarded
                | UserProfileUpdated | InvitationSent | InvitationResent | InvitationRevoked | InvitationAccepted
                | OrganizationProvisioned | OrganizationOffboarded)
HANDLED = (MemberRoleChanged, MemberSuspended, MemberReactivated, MemberRemoved, WorkspaceOffboarded,
           UserProfileUpdated, InvitationSent, InvitationResent, InvitationRevoked, InvitationAccepted,
           OrganizationProvisioned, OrganizationOffboarded)

_MEMBERSHIP = ("UPDATE memberships SET {change}, updated_at = %s, version = %s"
               " WHERE workspace_id = %s AND user_id = %s AND version < %s")


async def apply_members(conn: Conn, event: MembersEvent) -> None:
    match event:
        case MemberRoleChanged():
            await _membership(conn, event, "role = %s", event.to_role.value)
        case MemberSuspended():
            await _membership(conn, event, "status = %s", "suspended")
        case MemberReactivated():
            await _membership(conn, event, "status = %s", "active")
        case MemberRemoved():
            await _membership(conn, event, "status = %s", "removed")
        case WorkspaceOffboarded():
            await conn.execute(
                "UPDATE workspaces SET status = 'offboarded', offboarded_at = %s, updated_at = %s, version = %s"
                " WHERE id = %s AND version < %s",
                (event.occurred_at, event.occurred_at, event.originator_version, render("ws", event.originator_id),
                 event.originator_version))
        case UserProfileUpdated():
            await conn.execute(
                "UPDATE users SET name = %s, avatar_url = %s, timezone = %s, locale = %s, updated_at = %s,"
                " version = %s WHERE id = %s AND version < %s",
                (event.name, event.avatar_url, event.timezone or "UTC", event.locale or "en", event.occurred_at,
                 event.originator_version, render("usr", event.originator_id), event.originator_version))
        case InvitationSent():
            await conn.execute(
                "INSERT INTO invitations (workspace_id, id, email, role, status, expires_at, token_hash, invited_by,"
                " created_at, updated_at, version) VALUES (%s, %s, %s, %s, 'pending', %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (workspace_id, id) DO UPDATE SET role = excluded.role, status = 'pending',"
                " expires_at = excluded.expires_at, token_hash = excluded.token_hash,"
                " invited_by = excluded.invited_by, accepted_user_id = NULL, created_at = excluded.created_at,"
                " updated_at = excluded.updated_at, version = excluded.version"
                " WHERE invitations.version < excluded.version",
                (event.workspace_id, render("inv", event.originator_id), event.email, event.role.value,
                 event.expires_at, event.token_hash, event.actor.id, event.occurred_at, event.occurred_at,
                 event.originator_version))
        case InvitationResent():
            await _invitation(conn, event, "token_hash = %s, expires_at = %s", event.token_hash, event.expires_at)
        case InvitationRevoked():
            await _invitation(conn, event, "status = %s", "revoked")
        case InvitationAccepted():
            await _invitation(conn, event, "status = %s, accepted_user_id = %s", "accepted", event.user_id)
        case OrganizationProvisioned():
            await conn.execute(
                "INSERT INTO organizations (id, slug, name, plan, seats_total, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET plan = excluded.plan, seats_total = excluded.seats_total",
                (render("org", event.originator_id), event.slug, event.name, event.plan.value, event.seats_total,
                 event.occurred_at))
        case OrganizationOffboarded():
            await conn.execute("UPDATE organizations SET status = 'cancelled', offboarded_at = %s WHERE id = %s",
                               (event.occurred_at, render("org", event.originator_id)))
        case _:
            assert_never(event)


async def _membership(conn: Conn, event: MemberRoleChanged | MemberSuspended | MemberReactivated | MemberRemoved,
                      change: str, value: str) -> None:
    workspace_id = render("ws", event.originator_id)
    await conn.execute(_MEMBERSHIP.format(change=change),
                       (value, event.occurred_at, event.originator_version, workspace_id, event.user_id,
                        event.originator_version))
    await conn.execute("UPDATE workspaces SET version = %s, updated_at = %s WHERE id = %s AND version < %s",
                       (event.originator_version, event.occurred_at, workspace_id, event.originator_version))


async def _invitation(conn: Conn, event: InvitationResent | InvitationRevoked | InvitationAccepted, change: str,
                      *values: object) -> None:
    await conn.execute(
        f"UPDATE invitations SET {change}, updated_at = %s, version = %s"
        " WHERE workspace_id = %s AND id = %s AND version < %s",
        (*values, event.occurred_at, event.originator_version, event.workspace_id,
         render("inv", event.originator_id), event.originator_version))
