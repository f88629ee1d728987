"""What the members, invitations and me routes share: dependencies, error texts, read-your-writes, views,
keyset cursors."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn
from adapters.tokens import Principal
from api.core.consistency import settle
from api.core.deps import provide_caller, provide_read_pool
from api.core.errors import ApiError, validation_error
from api.core.pagination import cursor_key, decode_cursor
from api.members import schemas
from commands.caller import Caller
from commands.members import MemberCommands
from domain.identity.roles import Role
from projections.identity import roster
from projections.identity.projector import NAME as IDENTITY_PROJECTION

Commands = NamedDependency[MemberCommands]
ReadPool = NamedDependency[AsyncConnectionPool[AsyncConn]]
Who = NamedDependency[Caller]
IdPath = FromPath[str]



NOT_FOUND = "not_found: no such id in this workspace (other workspaces' ids look the same)"
ABOVE_OWN = "forbidden: the scope is missing, or the role is above your own (nobody grants above their own role)"
LAST_ADMIN = "last_admin: the workspace must keep at least one active tenant_admin or owner"
SEAT_LIMIT = "seat_limit: active memberships would exceed the organization's seats_total"


def provide_member_commands(state: State) -> MemberCommands:
    commands: MemberCommands = state.member_commands
    return commands


DEPENDENCIES = {
    "commands": Provide(provide_member_commands, sync_to_thread=False),
    "read_pool": Provide(provide_read_pool, sync_to_thread=False),
    "caller": Provide(provide_caller, sync_to_thread=False),
}


async def settled(state: State, position: int) -> dict[str, str]:
    """Read-your-writes, and the membership check's view: hold the 2xx until `identity` has the write."""
    return await settle(state, (IDENTITY_PROJECTION, position))


def actor_role(principal: Principal) -> Role:
    """The caller's CURRENT role (the membership check replaced the token's); unknown roles grant nothing."""
    try:
        return Role(principal.role)
    except ValueError:
        raise ApiError(403, "forbidden", "This token's role may not manage members") from None


def _after(request: Request[Any, Any, Any], cursor: str | None, sort: str) -> roster.Keyset | None:
    if not cursor:
        return None
    payload = decode_cursor(cursor_key(request), cursor, sort)
    try:
        return msgspec.convert({"at": payload.get("v"), "id": payload.get("i")}, roster.Keyset, strict=False)
    except msgspec.ValidationError:
        raise validation_error("cursor", "malformed cursor token") from None


def member_view(row: roster.MemberRow) -> schemas.MemberView:
    return schemas.MemberView(id=row.id, user_id=row.user_id, email=row.email, name=row.name,
                              avatar_url=row.avatar_url, role=Role(row.role), status=row.status,
                              joined_at=row.joined_at, updated_at=row.updated_at)


def invitation_view(row: roster.InvitationRow) -> schemas.InvitationView:
    return schemas.InvitationView(id=row.id, email=row.email, role=Role(row.role), status=row.status,
                                  expires_at=row.expires_at, expired=row.expired, invited_by=row.invited_by,
                                  accepted_user_id=row.accepted_user_id, created_at=row.created_at,
                                  updated_at=row.updated_at)
