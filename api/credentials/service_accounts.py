"""Service accounts (`/v1/service-accounts`): workspace machine principals with a role, and their tokens."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from api.core.auth import CurrentPrincipal, requires
from api.core.deps import provide_caller, provide_read_pool
from api.core.errors import not_found
from api.core.idempotency import SECRET_RESPONSE
from api.core.pagination import Cursor, Limit, Page
from api.credentials import common
from api.credentials.schemas import (
    CreateServiceAccountRequest,
    CreateServiceAccountTokenRequest,
    IssuedToken,
    ServiceAccountView,
    UpdateServiceAccountRequest,
)
from commands.caller import Caller
from commands.credentials import CredentialCommands, DuplicateName
from domain.credentials.events import TokenKind
from domain.credentials.grants import clean_scopes
from domain.credentials.service_account import ServiceAccountEdit
from domain.identity.roles import SCOPES_BY_ROLE
from domain.ids import render
from projections.credentials import queries
from projections.credentials.queries import TokenListing

SCOPE = "service_accounts:admin"
Commands = NamedDependency[CredentialCommands]
ReadPool = NamedDependency[AsyncConnectionPool[AsyncConn]]
Who = NamedDependency[Caller]
SA_TOKENS = [TokenKind.SERVICE_ACCOUNT]


class ServiceAccountsController(Controller):
    path = "/v1/service-accounts"
    tags = ("Service accounts",)
    guards = [requires(SCOPE)]  # noqa: RUF012  (Litestar reads this class attribute)
    dependencies = {  # noqa: RUF012
        "commands": Provide(common.provide_credential_commands, sync_to_thread=False),
        "read_pool": Provide(provide_read_pool, sync_to_thread=False),
        "caller": Provide(provide_caller, sync_to_thread=False),
    }

    @post("/", status_code=201, responses=common.ABOVE_OWN)
    async def create_service_account(self, state: State, data: JSONBody[CreateServiceAccountRequest],
                     principal: CurrentPrincipal, commands: Commands, caller: Who) -> Response[ServiceAccountView]:
        """Create a service account with a role no higher than the caller's own (else 403 `forbidden`).
        It belongs to the workspace, not to its creator, and outlives the creator's membership."""
        accepted = await commands.create_service_account(caller, name=data.name, description=data.description,
                                                         role=data.role, granter=common.role_of(principal))
        headers = await common.settle(state, accepted)
        headers["Location"] = f"/v1/service-accounts/{render('sa', accepted.stream_id)}"
        return Response(common.account_of(accepted), status_code=201, headers=headers)

    @get("/")
    async def list_service_accounts(self, request: Request[Any, Any, Any], principal: CurrentPrincipal,
                                    read_pool: ReadPool,
                            limit: Limit = 25, cursor: Cursor = None) -> Page[ServiceAccountView]:
        """The workspace's service accounts, oldest first."""
        async with tenant_transaction(read_pool, principal.workspace_id) as conn:
            rows, total = await queries.list_service_accounts(
                conn, principal.workspace_id, after=common.after_of(request, cursor), limit=limit + 1)
        return common.keyset_page(request, [common.account_view(row) for row in rows], limit, total)

    @get("/{account_id:str}")
    async def get_service_account(self, account_id: FromPath[str], principal: CurrentPrincipal,
                          read_pool: ReadPool) -> ServiceAccountView:
        """One service account (a deleted one is 404)."""
        public_id = common.ref("sa", "service account", account_id)
        async with tenant_transaction(read_pool, principal.workspace_id) as conn:
            row = await queries.get_service_account(conn, principal.workspace_id, public_id)
        if row is None:
            raise not_found("service account", account_id)
        return common.account_view(row)

    @patch("/{account_id:str}", responses=common.ABOVE_OWN)
    async def update_service_account(self, state: State, account_id: FromPath[str],
                     data: JSONBody[UpdateServiceAccountRequest], principal: CurrentPrincipal, commands: Commands,
                     caller: Who) -> Response[ServiceAccountView]:
        """Change name, description or role (role: within the caller's own, both the old and the new one).
        A role change narrows its tokens at their next request."""
        public_id = common.ref("sa", "service account", account_id)
        edit = ServiceAccountEdit(**msgspec.structs.asdict(data))
        accepted = await commands.update_service_account(caller, public_id, edit, common.role_of(principal))
        return Response(common.account_of(accepted), headers=await common.settle(state, accepted))

    @delete("/{account_id:str}", status_code=204, responses=common.ABOVE_OWN)
    async def delete_service_account(self, state: State, account_id: FromPath[str], principal: CurrentPrincipal,
                             commands: Commands, caller: Who, read_pool: ReadPool) -> Response[None]:
        """Delete a service account and revoke its tokens (401 at once)."""
        public_id = common.ref("sa", "service account", account_id)
        async with tenant_transaction(read_pool, principal.workspace_id) as conn:
            token_ids = await queries.active_token_ids(conn, principal.workspace_id, public_id)
        accepted = await commands.delete_service_account(caller, public_id, common.role_of(principal), token_ids)
        return Response(None, status_code=204, headers=await common.settle(state, accepted))

    @post("/{account_id:str}/tokens", status_code=201, opt=SECRET_RESPONSE,
          responses={**common.ABOVE_OWN, **common.DUPLICATE_NAME})
    async def create_service_account_token(self, state: State, account_id: FromPath[str],
                           data: JSONBody[CreateServiceAccountTokenRequest], principal: CurrentPrincipal,
                           commands: Commands, caller: Who) -> Response[IssuedToken]:
        """Issue a token (`clp_sa_…`, shown once) acting as the service account. Its scopes must be the
        account role's AND the caller's (default: all of those); at each request they are narrowed again to
        the account's current role. A caller using an API token that expires must set an expiry no later."""
        public_id = common.ref("sa", "service account", account_id)
        account, _ = await commands.service_account(caller, public_id)
        grant = common.grant_of(principal).narrowed(SCOPES_BY_ROLE[account.role])
        scopes = clean_scopes(data.scopes if data.scopes is not None else sorted(grant.scopes), grant.scopes)
        try:
            issued = await commands.issue_service_account_token(caller, public_id, name=data.name, scopes=scopes,
                                                                expires_at=data.expires_at, grant=grant)
        except DuplicateName as exc:
            raise common.duplicate(exc) from None
        headers = await common.settle(state, issued)
        headers["Location"] = f"/v1/service-accounts/{public_id}/tokens/{render('tok', issued.stream_id)}"
        return Response(common.issued(common.token_view(issued), issued.revealed), status_code=201,
                        headers=headers)

    @get("/{account_id:str}/tokens")
    async def list_service_account_tokens(self, request: Request[Any, Any, Any], account_id: FromPath[str],
                          principal: CurrentPrincipal, read_pool: ReadPool, limit: Limit = 25,
                          cursor: Cursor = None, include_revoked: FromQuery[bool] = False) -> Page[TokenListing]:
        """The account's tokens (never their secrets), with `last_used_at`."""
        public_id = common.ref("sa", "service account", account_id)
        async with tenant_transaction(read_pool, principal.workspace_id) as conn:
            if await queries.get_service_account(conn, principal.workspace_id, public_id) is None:
                raise not_found("service account", account_id)
            rows, total = await queries.list_tokens(
                conn, principal.workspace_id, kinds=[TokenKind.SERVICE_ACCOUNT.value], owner_id=public_id,
                include_revoked=include_revoked, after=common.after_of(request, cursor), limit=limit + 1)
        return common.keyset_page(request, rows, limit, total)

    @delete("/{account_id:str}/tokens/{token_id:str}", status_code=204)
    async def revoke_service_account_token(self, state: State, account_id: FromPath[str], token_id: FromPath[str],
                           commands: Commands, caller: Who) -> Response[None]:
        """Revoke one of the account's tokens: 401 at its next use."""
        public_id = common.ref("sa", "service account", account_id)
        accepted = await commands.revoke_token(caller, common.ref("tok", "token", token_id), kinds=SA_TOKENS,
                                               owner_id=public_id)
        return Response(None, status_code=204, headers=await common.settle(state, accepted))
