"""Members of the workspace (`/v1/members`). Commands go to the event store; reads come from the `identity`
projection. Every command answers only once that projection has the write, so a new role, a suspension or a
removal holds on the member's very next request, on every replica.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch
from litestar.datastructures import State
from litestar.params import FromQuery, JSONBody
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from api.core.auth import CurrentPrincipal, requires
from api.core.errors import ApiError, error_responses, not_found, validation_error
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
    LAST_ADMIN,
    NOT_FOUND,
    SEAT_LIMIT,
    Commands,
    IdPath,
    ReadPool,
    Who,
    _after,
    actor_role,
    member_view,
    settled,
)
from commands.caller import Caller
from domain.identity.roles import Role
from domain.identity.workspace import MemberStatus
from domain.ids import canonical
from projections.identity import roster


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
        statuses = parse_choices("status", status, {s.value for s in MemberStatus})
        roles = parse_choices("role", role, {r.value for r in Role})
        after = _after(request, cursor, token)
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            rows, total = await roster.list_members(conn, caller.workspace_id, statuses=statuses, roles=roles,
                                                    descending=descending, after=after, limit=limit + 1)
        page = page_of(rows, limit=limit, total=total, key=cursor_key(request), sort=token,
                       position=lambda row: {"v": row.joined_at.isoformat(), "i": row.id})
        return Page(data=[member_view(row) for row in page.data], page=page.page)

    @get("/{member_id:str}", guards=[requires("members:read")], responses=error_responses(e404=NOT_FOUND))
    async def get_member(self, member_id: IdPath, read_pool: ReadPool, caller: Who) -> schemas.MemberView:
        """One member by membership id (`mem_…`)."""
        return await _member(read_pool, caller, member_id)

    @patch("/{member_id:str}", guards=[requires("members:write")],
           responses=error_responses(e403=ABOVE_OWN, e404=NOT_FOUND, e422=f"{LAST_ADMIN}; {SEAT_LIMIT} (reactivation)"))
    async def update_member(self, state: State, member_id: IdPath, data: JSONBody[schemas.UpdateMemberRequest],
                            commands: Commands, caller: Who, read_pool: ReadPool,
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
        headers = await settled(state, changed.position)
        return Response(await _member(read_pool, caller, member_id), headers=headers)

    @delete("/{member_id:str}", guards=[requires("members:admin")], status_code=204,
            responses=error_responses(e403=ABOVE_OWN, e404=NOT_FOUND, e422=LAST_ADMIN))
    async def remove_member(self, state: State, member_id: IdPath, commands: Commands, caller: Who,
                            principal: CurrentPrincipal) -> Response[None]:
        """Remove a member: every token of theirs for this workspace is refused (401) from the next request.
        The last active admin cannot be removed (422 last_admin)."""
        changed = await commands.remove(member_id, actor_role(principal), caller)
        headers = await settled(state, changed.position)
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
