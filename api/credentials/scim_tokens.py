"""SCIM tokens (`/v1/settings/scim-tokens`): the workspace secrets (`clp_scim_…`) an identity provider uses."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from api.core.auth import CurrentPrincipal, requires
from api.core.deps import provide_caller, provide_read_pool
from api.core.idempotency import SECRET_RESPONSE
from api.core.pagination import Cursor, Limit, Page
from api.credentials import common
from api.credentials.schemas import CreateScimTokenRequest, IssuedToken
from commands.caller import Caller
from commands.credentials import CredentialCommands, DuplicateName
from domain.credentials.events import TokenKind
from domain.ids import render
from projections.credentials import queries
from projections.credentials.queries import TokenListing

SCOPE = "members:admin"
Commands = NamedDependency[CredentialCommands]
ReadPool = NamedDependency[AsyncConnectionPool[AsyncConn]]
Who = NamedDependency[Caller]


class ScimTokensController(Controller):
    path = "/v1/settings/scim-tokens"
    tags = ("SCIM",)
    guards = [requires(SCOPE)]  # noqa: RUF012  (Litestar reads this class attribute)
    dependencies = {  # noqa: RUF012
        "commands": Provide(common.provide_credential_commands, sync_to_thread=False),
        "read_pool": Provide(provide_read_pool, sync_to_thread=False),
        "caller": Provide(provide_caller, sync_to_thread=False),
    }

    @post("/", status_code=201, opt=SECRET_RESPONSE, responses=common.DUPLICATE_NAME)
    async def create_scim_token(self, state: State, data: JSONBody[CreateScimTokenRequest], commands: Commands,
                     caller: Who, principal: CurrentPrincipal) -> Response[IssuedToken]:
        """Create a SCIM token for the identity provider (secret `clp_scim_…`, shown once). It works only
        on /scim/v2 and nowhere else; /v1 refuses it with 401. A caller using an API token that expires must set
        an expiry no later."""
        try:
            issued = await commands.create_token(caller, kind=TokenKind.SCIM, owner_id=None, name=data.name,
                                                 scopes=(), expires_at=data.expires_at,
                                                 grant=common.grant_of(principal))
        except DuplicateName as exc:
            raise common.duplicate(exc) from None
        headers = await common.settle(state, issued)
        headers["Location"] = f"/v1/settings/scim-tokens/{render('tok', issued.stream_id)}"
        return Response(common.issued(common.token_view(issued), issued.revealed), status_code=201,
                        headers=headers)

    @get("/")
    async def list_scim_tokens(self, request: Request[Any, Any, Any], principal: CurrentPrincipal, read_pool: ReadPool,
                          limit: Limit = 25, cursor: Cursor = None,
                          include_revoked: FromQuery[bool] = False) -> Page[TokenListing]:
        """The workspace's SCIM tokens (never their secrets), with `last_used_at`."""
        async with tenant_transaction(read_pool, principal.workspace_id) as conn:
            rows, total = await queries.list_tokens(
                conn, principal.workspace_id, kinds=[TokenKind.SCIM.value], owner_id=None,
                include_revoked=include_revoked, after=common.after_of(request, cursor), limit=limit + 1)
        return common.keyset_page(request, rows, limit, total)

    @delete("/{token_id:str}", status_code=204)
    async def revoke_scim_token(self, state: State, token_id: FromPath[str], commands: Commands,
                                caller: Who) -> Response[None]:
        """Revoke a SCIM token: the identity provider gets 401 at its next call."""
        accepted = await commands.revoke_token(caller, common.ref("tok", "token", token_id), kinds=[TokenKind.SCIM],
                                               owner_id=None)
        return Response(None, status_code=204, headers=await common.settle(state, accepted))
