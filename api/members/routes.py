"""Members, invitations, roles and the current user. Commands go to the event store; reads come from the
`identity` projection. Every command answers only once that projection has the write, so a new role, a
suspension or a removal holds on the member's very next request, on every replica.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from adapters.settings import Settings
from adapters.tokens import Principal
from api.auth import CurrentPrincipal, authenticated, requires
from api.consistency import read_your_writes
from api.deps import provide_caller, provide_read_pool, provide_waiter
from api.errors import ApiError, error_responses, not_found, validation_error
from api.idempotency import SECRET_RESPONSE
from api.members import schemas
from api.pagination import Cursor, Limit, Page, SortParam, decode_cursor, page_of, parse_sort, sort_spec
from commands.caller import Caller
from commands.members import MemberCommands, joined_of, membership_id
from commands.runner import Result
from domain.identity.invitation import InvitationStatus
from domain.identity.roles import ROLE_RANK, SCOPES_BY_ROLE, Role
from domain.identity.user import ProfileEdit
from domain.identity.workspace import MemberStatus
from domain.ids import canonical, render
from projections.identity import queries, roster
from projections.identity.projector import NAME as IDENTITY_PROJECTION
from projections.position_waiter import PositionWaiter

Commands = NamedDependency[MemberCommands]
ReadPool = NamedDependency[AsyncConnectionPool[AsyncConn]]
Waiter = NamedDependency[PositionWaiter]
Who = NamedDependency[Caller]
IdPath = FromPath[str]

ROLE_LABELS = {
    Role.READ_ONLY: "Read Only", Role.VIEWER: "Viewer", Role.EXECUTIVE: "Executive", Role.ANALYST: "Analyst",
    Role.SECURITY_ADMIN: "Security Admin", Role.COMPLIANCE_ADMIN: "Compliance Admin",
    Role.TENANT_ADMIN: "Workspace Admin", Role.OWNER: "Owner",
}


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
    "waiter": Provide(provide_waiter, sync_to_thread=False),
    "caller": Provide(provide_caller, sync_to_thread=False),
}


async def settle(waiter: PositionWaiter, settings: Settings, position: int) -> dict[str, str]:
    """Read-your-writes, and the membership check's view: hold the 2xx until `identity` has the write."""
    if position == 0:
        return {}
    return await read_your_writes(waiter, settings, IDENTITY_PROJECTION, position)


def actor_role(principal: Principal) -> Role:
    """The caller's CURRENT role (the membership check replaced the token's); unknown roles grant nothing."""
    try:
        return Role(principal.role)
    except ValueError:
        raise ApiError(403, "forbidden", "This token's role may not manage members") from None


def _split(field: str, value: str | None, allowed: set[str]) -> list[str] | None:
    parts = [p.strip() for p in value.split(",") if p.strip()] if value else None
    if parts is not None and not set(parts) <= allowed:
        raise validation_error(field, f"must be one of {', '.join(sorted(allowed))}")
    return parts


def _cursor_key(request: Request[Any, Any, Any]) -> str:
    settings: Settings = request.app.state.settings
    return settings.signing_key_for_cursors


def _after(request: Request[Any, Any, Any], cursor: str | None, sort: str) -> roster.Keyset | None:
    if not cursor:
        return None
    payload = decode_cursor(_cursor_key(request), cursor, sort)
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


class MembersController(Controller):
    path = "/v1/members"
    tags = ("Users & Members",)
    dependencies = DEPENDENCIES

    @get("/", guards=[requires("members:read")])
    async def list_members(self, request: Request[Any, Any, Any], read_pool: ReadPool, caller: Who,
                           limit: Limit = 25, cursor: Cursor = None, sort: SortParam = None,
                           status: FromQuery[str | None] = None,
                           role: FromQuery[str | None] = None) -> Page[schemas.MemberView]:
        """The roster: filters `status` (active, suspended) and `role` (comma = OR); sort `joined_at` or
        `-joined_at` (default); removed members are not listed."""
        field, descending = parse_sort(sort, {"joined_at"}, "-joined_at")
        token = sort_spec(field, descending)
        statuses = _split("status", status, {s.value for s in MemberStatus})
        roles = _split("role", role, {r.value for r in Role})
        after = _after(request, cursor, token)
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            rows, total = await roster.list_members(conn, caller.workspace_id, statuses=statuses, roles=roles,
                                                    descending=descending, after=after, limit=limit + 1)
        page = page_of(rows, limit=limit, total=total, key=_cursor_key(request), sort=token,
                       position=lambda row: {"v": row.joined_at.isoformat(), "i": row.id})
        return Page(data=[member_view(row) for row in page.data], page=page.page)

    @get("/{member_id:str}", guards=[requires("members:read")], responses=error_responses(e404=NOT_FOUND))
    async def get_member(self, member_id: IdPath, read_pool: ReadPool, caller: Who) -> schemas.MemberView:
        """One member by membership id (`mem_…`)."""
        return await _member(read_pool, caller, member_id)

    @patch("/{member_id:str}", guards=[requires("members:write")],
           responses=error_responses(e403=ABOVE_OWN, e404=NOT_FOUND, e422=f"{LAST_ADMIN}; {SEAT_LIMIT} (reactivation)"))
    async def update_member(self, state: State, member_id: IdPath, data: JSONBody[schemas.UpdateMemberRequest],
                            commands: Commands, caller: Who, waiter: Waiter, read_pool: ReadPool,
                            principal: CurrentPrincipal) -> Response[schemas.MemberView]:
        """Change the role (`members:write`; never above your own) and/or suspend/reactivate (`status`,
        needs `members:admin`). Effective on the member's very next request. Last active admin → 422 last_admin."""
        if data.role is msgspec.UNSET and data.status is msgspec.UNSET:
            raise validation_error("body", "give role and/or status")
        if data.status is not msgspec.UNSET and "members:admin" not in principal.scopes:
            raise ApiError(403, "forbidden", "Changing a member's status needs the scope members:admin",
                           {"required_scope": "members:admin"})
        changed = await commands.update(
            member_id, None if data.role is msgspec.UNSET else data.role,
            None if data.status is msgspec.UNSET else MemberStatus(data.status.value), actor_role(principal), caller)
        headers = await settle(waiter, state.settings, changed.position)
        return Response(await _member(read_pool, caller, member_id), headers=headers)

    @delete("/{member_id:str}", guards=[requires("members:admin")], status_code=204,
            responses=error_responses(e403=ABOVE_OWN, e404=NOT_FOUND, e422=LAST_ADMIN))
    async def remove_member(self, state: State, member_id: IdPath, commands: Commands, caller: Who,
                            waiter: Waiter, principal: CurrentPrincipal) -> Response[None]:
        """Remove a member: every token of theirs for this workspace is refused (401) from the next request.
        The last active admin cannot be removed (422 last_admin)."""
        changed = await commands.remove(member_id, actor_role(principal), caller)
        headers = await settle(waiter, state.settings, changed.position)
        return Response(None, status_code=204, headers=headers)


async def _member(read_pool: AsyncConnectionPool[AsyncConn], caller: Caller, member_id: str) -> schemas.MemberView:
    public = canonical("mem", member_id)
    if public is None:
        raise not_found("member", member_id)
    async with tenant_transaction(read_pool, caller.workspace_id) as conn:
        row = await roster.member(conn, caller.workspace_id, public)
    if row is None:
        raise not_found("member", member_id)
    return member_view(row)


class InvitationsController(Controller):
    path = "/v1/invitations"
    tags = ("Users & Members",)
    dependencies = DEPENDENCIES

    @post("/", guards=[requires("members:write")], status_code=201, opt=SECRET_RESPONSE,
          responses=error_responses(e403=ABOVE_OWN, e409="conflict: already a member, or an invitation is pending",
                           e422=SEAT_LIMIT))
    async def invite(self, state: State, data: JSONBody[schemas.InviteRequest], commands: Commands, caller: Who,
                     waiter: Waiter, read_pool: ReadPool,
                     principal: CurrentPrincipal) -> Response[schemas.InvitationSent]:
        """Invite an email with a role at or below yours. The response carries the acceptance `token` (valid
        7 days, single use) and `accept_url` ONCE; no email is sent by this service. 409 when the email is
        already a member or already has a pending invitation; 422 seat_limit when no seat is free."""
        sent = await commands.invite(data.email, data.role, actor_role(principal), caller)
        return await _sent(state, sent, waiter, read_pool, caller, 201)

    @get("/", guards=[requires("members:read")])
    async def list_invitations(self, request: Request[Any, Any, Any], read_pool: ReadPool, caller: Who,
                               limit: Limit = 25, cursor: Cursor = None, sort: SortParam = None,
                               status: FromQuery[str | None] = None) -> Page[schemas.InvitationView]:
        """Invitations, newest first: filter `status` (pending, accepted, revoked; comma = OR)."""
        field, descending = parse_sort(sort, {"created_at"}, "-created_at")
        token = sort_spec(field, descending)
        statuses = _split("status", status, {s.value for s in InvitationStatus})
        after = _after(request, cursor, token)
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            rows, total = await roster.list_invitations(conn, caller.workspace_id, statuses=statuses,
                                                        descending=descending, after=after, limit=limit + 1)
        page = page_of(rows, limit=limit, total=total, key=_cursor_key(request), sort=token,
                       position=lambda row: {"v": row.created_at.isoformat(), "i": row.id})
        return Page(data=[invitation_view(row) for row in page.data], page=page.page)

    @get("/{invitation_id:str}", guards=[requires("members:read")], responses=error_responses(e404=NOT_FOUND))
    async def get_invitation(self, invitation_id: IdPath, read_pool: ReadPool,
                             caller: Who) -> schemas.InvitationView:
        """One invitation (never its token)."""
        return invitation_view(await _invitation(read_pool, caller, invitation_id))

    @post("/{invitation_id:str}/resend", guards=[requires("members:write")], status_code=200,
          opt=SECRET_RESPONSE,
          responses=error_responses(e404=NOT_FOUND, e422="invalid_transition: the invitation is accepted or revoked"))
    async def resend(self, state: State, invitation_id: IdPath, commands: Commands, caller: Who, waiter: Waiter,
                     read_pool: ReadPool) -> Response[schemas.InvitationSent]:
        """A fresh token and link, valid 7 days (shown once); the earlier links stay valid until they expire."""
        sent = await commands.resend(_invitation_ref(invitation_id), caller)
        return await _sent(state, sent, waiter, read_pool, caller, 200)

    @delete("/{invitation_id:str}", guards=[requires("members:write")], status_code=204,
            responses=error_responses(e404=NOT_FOUND, e422="invalid_transition: the invitation was accepted"))
    async def revoke(self, state: State, invitation_id: IdPath, commands: Commands, caller: Who,
                     waiter: Waiter) -> Response[None]:
        """Revoke a pending invitation: none of its links works any more (again: no-op; accepted: 422)."""
        changed = await commands.revoke(_invitation_ref(invitation_id), caller)
        return Response(None, status_code=204, headers=await settle(waiter, state.settings, changed.position))

    @post("/accept", guards=[authenticated], status_code=200, responses=error_responses(
        e403="forbidden: the invitation was sent to another email", e404="not_found: unknown token",
        e422="invitation_expired: the link is older than 7 days; invalid_transition: already accepted or revoked;"
             f" {SEAT_LIMIT}"))
    async def accept(self, state: State, data: JSONBody[schemas.AcceptRequest], commands: Commands, caller: Who,
                     waiter: Waiter, read_pool: ReadPool) -> Response[schemas.MembershipJoined]:
        """Accept with the token: the signed-in user (any workspace's token) whose email the invitation was
        sent to joins its workspace with its role. Single use (again → 422 invalid_transition); expired →
        422 invitation_expired; another user's email → 403; unknown token → 404."""
        joined = joined_of(await commands.accept(data.token, caller))
        headers = await settle(waiter, state.settings, joined.position)
        async with tenant_transaction(read_pool, joined.workspace_id) as conn:
            member = await roster.member(conn, joined.workspace_id, joined.membership_id)
        return Response(schemas.MembershipJoined(membership_id=joined.membership_id,
                                                 workspace_id=joined.workspace_id, user_id=joined.user_id,
                                                 role=Role(member.role) if member else joined.role,
                                                 invitation_id=joined.invitation_id),
                        headers=headers)


def _invitation_ref(invitation_id: str) -> str:
    public = canonical("inv", invitation_id)
    if public is None:
        raise not_found("invitation", invitation_id)
    return public


async def _invitation(read_pool: AsyncConnectionPool[AsyncConn], caller: Caller,
                      invitation_id: str) -> roster.InvitationRow:
    public = _invitation_ref(invitation_id)
    async with tenant_transaction(read_pool, caller.workspace_id) as conn:
        row = await roster.invitation(conn, caller.workspace_id, public)
    if row is None:
        raise not_found("invitation", invitation_id)
    return row


async def _sent(state: State, sent: Result, waiter: PositionWaiter, read_pool: AsyncConnectionPool[AsyncConn],
                caller: Caller, status: int) -> Response[schemas.InvitationSent]:
    settings: Settings = state.settings
    headers = await settle(waiter, settings, sent.position)
    view = invitation_view(await _invitation(read_pool, caller, render("inv", sent.stream_id)))
    token = sent.revealed or ""
    url = f"{settings.app_url.rstrip('/')}/invitations/accept?token={quote(token)}"
    body = schemas.InvitationSent(**msgspec.structs.asdict(view), token=token, accept_url=url)
    return Response(body, status_code=status, headers={**headers, "Location": f"/v1/invitations/{view.id}"})


class RolesController(Controller):
    path = "/v1/roles"
    tags = ("Users & Members",)

    @get("/", guards=[authenticated])
    async def list_roles(self) -> schemas.RoleList:
        """Every role with its label, rank (you may grant roles at or below your own) and scopes."""
        ordered = sorted(Role, key=lambda r: (ROLE_RANK[r], r.value))
        return schemas.RoleList(data=[schemas.RoleView(role=r, label=ROLE_LABELS[r], rank=ROLE_RANK[r],
                                                       scopes=sorted(SCOPES_BY_ROLE[r])) for r in ordered])


class MeController(Controller):
    path = "/v1/users/me"
    tags = ("Users & Members",)
    dependencies = DEPENDENCIES

    @get("/", guards=[authenticated])
    async def get_me(self, read_pool: ReadPool, principal: CurrentPrincipal) -> schemas.MeView:
        """The signed-in user, with their role and membership in the token's workspace."""
        return await _me(read_pool, principal)

    @patch("/", guards=[authenticated])
    async def update_me(self, state: State, data: JSONBody[schemas.UpdateMeRequest], commands: Commands,
                        caller: Who, waiter: Waiter, read_pool: ReadPool,
                        principal: CurrentPrincipal) -> Response[schemas.MeView]:
        """Update name (1–200), avatar_url (≤ 2048, http(s)), timezone (IANA, ≤ 100), locale (BCP 47, ≤ 20)."""
        if not principal.subject.startswith("usr_"):
            raise not_found("user", principal.subject)
        edit = ProfileEdit(name=msgspec.UNSET if data.name is None else data.name, avatar_url=data.avatar_url,
                           timezone=data.timezone, locale=data.locale)
        changed = await commands.update_profile(edit, caller)
        headers = await settle(waiter, state.settings, changed.position)
        return Response(await _me(read_pool, principal), headers=headers)


async def _me(read_pool: AsyncConnectionPool[AsyncConn], principal: Principal) -> schemas.MeView:
    """Users are global rows (no RLS); the membership is read inside the token's workspace."""
    async with tenant_transaction(read_pool, principal.workspace_id) as conn:
        user = await queries.user_by_id(conn, principal.subject)
    if user is None:
        raise not_found("user", principal.subject)
    return schemas.MeView(id=user.id, email=user.email, name=user.name, workspace_id=principal.workspace_id,
                          avatar_url=user.avatar_url, clerk_user_id=user.clerk_user_id, created_at=user.created_at,
                          timezone=user.timezone, locale=user.locale, role=principal.role,
                          membership_id=membership_id(principal.workspace_id, user.id))
