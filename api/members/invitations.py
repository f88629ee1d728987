"""Invitations (`/v1/invitations`): sent, resent, revoked and accepted; the token is shown once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromQuery, JSONBody
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from adapters.settings import Settings
from api.core.auth import CurrentPrincipal, authenticated, requires
from api.core.errors import error_responses, not_found
from api.core.idempotency import SECRET_RESPONSE
from api.core.pagination import (
    Cursor,
    Limit,
    Page,
    SortParam,
    cursor_key,
    page_of,
    parse_choices,
    parse_sort,
    sort_spec,
)
from api.members import schemas
from api.members.common import (
    ABOVE_OWN,
    DEPENDENCIES,
    NOT_FOUND,
    SEAT_LIMIT,
    Commands,
    IdPath,
    ReadPool,
    Who,
    _after,
    actor_role,
    invitation_view,
    settled,
)
from commands.caller import Caller
from commands.members import joined_of
from commands.runner import Result
from domain.identity.invitation import InvitationStatus
from domain.identity.roles import Role
from domain.ids import canonical, render
from projections.identity import roster


class InvitationsController(Controller):
    path = "/v1/invitations"
    tags = ("Users & Members",)
    dependencies = DEPENDENCIES

    @post("/", guards=[requires("members:write")], status_code=201, opt=SECRET_RESPONSE,
          responses=error_responses(e403=ABOVE_OWN, e409="conflict: already a member, or an invitation is pending",
                           e422=SEAT_LIMIT))
    async def create_invitation(self, state: State, data: JSONBody[schemas.InviteRequest], commands: Commands,
                                caller: Who,
                     read_pool: ReadPool,
                     principal: CurrentPrincipal) -> Response[schemas.InvitationSent]:
        """Invite an email with a role at or below yours. The response carries the acceptance `token` (valid
        7 days, single use) and `accept_url` ONCE; no email is sent by this service. 409 when the email is
        already a member or already has a pending invitation; 422 seat_limit when no seat is free."""
        sent = await commands.invite(data.email, data.role, actor_role(principal), caller)
        return await _sent(state, sent, read_pool, caller, 201)

    @get("/", guards=[requires("members:read")])
    async def list_invitations(self, request: Request[Any, Any, Any], read_pool: ReadPool, caller: Who,
                               limit: Limit = 25, cursor: Cursor = None, sort: SortParam = None,
                               status: FromQuery[str | None] = None) -> Page[schemas.InvitationView]:
        """Invitations, newest first: filter `status` (pending, accepted, revoked; comma = OR)."""
        field, descending = parse_sort(sort, {"created_at"}, "-created_at")
        token = sort_spec(field, descending)
        statuses = parse_choices("status", status, {s.value for s in InvitationStatus})
        after = _after(request, cursor, token)
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            rows, total = await roster.list_invitations(conn, caller.workspace_id, statuses=statuses,
                                                        descending=descending, after=after, limit=limit + 1)
        page = page_of(rows, limit=limit, total=total, key=cursor_key(request), sort=token,
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
    async def resend_invitation(self, state: State, invitation_id: IdPath, commands: Commands, caller: Who,
                     read_pool: ReadPool) -> Response[schemas.InvitationSent]:
        """A fresh token and link, valid 7 days (shown once); the earlier links stay valid until they expire."""
        sent = await commands.resend(_invitation_ref(invitation_id), caller)
        return await _sent(state, sent, read_pool, caller, 200)

    @delete("/{invitation_id:str}", guards=[requires("members:write")], status_code=204,
            responses=error_responses(e404=NOT_FOUND, e422="invalid_transition: the invitation was accepted"))
    async def revoke_invitation(self, state: State, invitation_id: IdPath, commands: Commands,
                                caller: Who) -> Response[None]:
        """Revoke a pending invitation: none of its links works any more (again: no-op; accepted: 422)."""
        changed = await commands.revoke(_invitation_ref(invitation_id), caller)
        return Response(None, status_code=204, headers=await settled(state, changed.position))

    @post("/accept", guards=[authenticated], status_code=200, responses=error_responses(
        e403="forbidden: the invitation was sent to another email", e404="not_found: unknown token",
        e422="invitation_expired: the link is older than 7 days; invalid_transition: already accepted or revoked;"
             f" {SEAT_LIMIT}"))
    async def accept_invitation(self, state: State, data: JSONBody[schemas.AcceptRequest], commands: Commands,
                                caller: Who,
                     read_pool: ReadPool) -> Response[schemas.MembershipJoined]:
        """Accept with the token: the signed-in user (any workspace's token) whose email the invitation was
        sent to joins its workspace with its role. Single use (again → 422 invalid_transition); expired →
        422 invitation_expired; another user's email → 403; unknown token → 404."""
        joined = joined_of(await commands.accept(data.token, caller))
        headers = await settled(state, joined.position)
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


async def _sent(state: State, sent: Result, read_pool: AsyncConnectionPool[AsyncConn],
                caller: Caller, status: int) -> Response[schemas.InvitationSent]:
    settings: Settings = state.settings
    headers = await settled(state, sent.position)
    view = invitation_view(await _invitation(read_pool, caller, render("inv", sent.stream_id)))
    token = sent.revealed or ""
    url = f"{settings.app_url.rstrip('/')}/invitations/accept?token={quote(token)}"
    body = schemas.InvitationSent(**msgspec.structs.asdict(view), token=token, accept_url=url)
    return Response(body, status_code=status, headers={**headers, "Location": f"/v1/invitations/{view.id}"})
