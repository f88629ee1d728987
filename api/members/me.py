"""The signed-in user (`/v1/users/me`).
"""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get, patch
from litestar.datastructures import State
from litestar.params import JSONBody
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from adapters.tokens import Principal
from api.core.auth import CurrentPrincipal, authenticated
from api.core.errors import error_responses, not_found
from api.members import schemas
from api.members.common import (
    DEPENDENCIES,
    Commands,
    ReadPool,
    Who,
    settled,
)
from commands.members import membership_id
from domain.identity.user import ProfileEdit
from projections.identity import queries

NOT_A_USER = error_responses(e404="not_found: the token belongs to a service account, which has no user profile")


class MeController(Controller):
    path = "/v1/users/me"
    tags = ("Users & Members",)
    dependencies = DEPENDENCIES

    @get("/", guards=[authenticated], responses=NOT_A_USER)
    async def get_me(self, read_pool: ReadPool, principal: CurrentPrincipal) -> schemas.MeView:
        """The signed-in user, with their role and membership in the token's workspace."""
        return await _me(read_pool, principal)

    @patch("/", guards=[authenticated], responses=NOT_A_USER)
    async def update_me(self, state: State, data: JSONBody[schemas.UpdateMeRequest], commands: Commands,
                        caller: Who, read_pool: ReadPool,
                        principal: CurrentPrincipal) -> Response[schemas.MeView]:
        """Update name (1–200), avatar_url (≤ 2048, http(s)), timezone (IANA, ≤ 100), locale (BCP 47, ≤ 20)."""
        if not principal.subject.startswith("usr_"):
            raise not_found("user", principal.subject)
        edit = ProfileEdit(name=msgspec.UNSET if data.name is None else data.name, avatar_url=data.avatar_url,
                           timezone=data.timezone, locale=data.locale)
        changed = await commands.update_profile(edit, caller)
        headers = await settled(state, changed.position)
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
