"""Personal API tokens (`/v1/api-tokens`): a user's own scoped `clp_pat_…` secrets, shown once."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from adapters.tokens import Principal
from api.core.auth import CurrentPrincipal, authenticated, requires
from api.core.deps import provide_caller, provide_read_pool
from api.core.errors import ApiError, error_responses
from api.core.idempotency import SECRET_RESPONSE
from api.core.pagination import Cursor, Limit, Page
from api.credentials import common
from api.credentials.schemas import (
    CatalogueGroup,
    CatalogueScope,
    CreateApiTokenRequest,
    IssuedToken,
    ScopeCatalogue,
)
from commands.caller import Caller
from commands.credentials import CredentialCommands, DuplicateName
from domain.credentials.events import TokenKind
from domain.credentials.grants import catalogue, clean_scopes
from domain.ids import render
from projections.credentials import queries
from projections.credentials.queries import TokenListing

SCOPE = "api_tokens:write"
"""Managing (listing, creating, rotating, revoking) one's own tokens: every role has it, a narrowed token may not."""
ADMIN_SCOPE = "api_tokens:admin"
Commands = NamedDependency[CredentialCommands]
ReadPool = NamedDependency[AsyncConnectionPool[AsyncConn]]
Who = NamedDependency[Caller]
PERSONAL = [TokenKind.PERSONAL]


NOT_A_USER = "forbidden: a service account's token (personal tokens belong to people)"


def _user(principal: Principal) -> str:
    """Personal tokens belong to people: a service account (or its token) cannot hold one."""
    if not principal.subject.startswith("usr_"):
        raise ApiError(403, "forbidden", "Only users have personal API tokens; use a service-account token")
    return principal.subject


def _is_admin(principal: Principal) -> bool:
    return ADMIN_SCOPE in principal.scopes


class ApiTokensController(Controller):
    path = "/v1/api-tokens"
    tags = ("API tokens",)
    dependencies = {  # noqa: RUF012  (Litestar reads this class attribute)
        "commands": Provide(common.provide_credential_commands, sync_to_thread=False),
        "read_pool": Provide(provide_read_pool, sync_to_thread=False),
        "caller": Provide(provide_caller, sync_to_thread=False),
    }

    @get("/scopes", guards=[authenticated])
    async def list_api_token_scopes(self, principal: CurrentPrincipal) -> ScopeCatalogue:
        """The scope catalogue in the docs' tabs (Data, Integrations, Workspace, AI & Reports, Admin);
        `granted` marks the scopes the caller holds and so may put on a token."""
        return ScopeCatalogue(data=[
            CatalogueGroup(group=group, scopes=[CatalogueScope(scope=s, granted=s in principal.scopes)
                                                for s in scopes])
            for group, scopes in catalogue().items()])

    @post("/", guards=[requires(SCOPE)], status_code=201, opt=SECRET_RESPONSE, responses={
        **common.DUPLICATE_NAME, **error_responses(e403=f"{NOT_A_USER}; a scope you do not hold (details name it)")})
    async def create_api_token(self, state: State, data: JSONBody[CreateApiTokenRequest], principal: CurrentPrincipal,
                     commands: Commands, caller: Who) -> Response[IssuedToken]:
        """Create a personal API token. The secret (`clp_pat_…`) is in this response only; store it now.

        `scopes` must be ones the caller holds (else 403 `forbidden` naming the scope; an unknown scope is
        400); `name` is unique among the caller's active tokens (409); `expires_at` is optional, but a caller
        using an API token that expires must set one no later than its own (else 403 on `expires_at`).
        """
        owner = _user(principal)
        grant = common.grant_of(principal)
        scopes = clean_scopes(data.scopes, grant.scopes)
        try:
            issued = await commands.create_token(caller, kind=TokenKind.PERSONAL, owner_id=owner, name=data.name,
                                                 scopes=scopes, expires_at=data.expires_at, grant=grant)
        except DuplicateName as exc:
            raise common.duplicate(exc) from None
        headers = await common.settle(state, issued)
        headers["Location"] = f"/v1/api-tokens/{render('tok', issued.stream_id)}"
        return Response(common.issued(common.token_view(issued), issued.revealed), status_code=201,
                        headers=headers)

    @get("/", guards=[requires(SCOPE)],
         responses=error_responses(e403=f"forbidden: owner_id names others, which needs the scope {ADMIN_SCOPE}"))
    async def list_api_tokens(self, request: Request[Any, Any, Any], principal: CurrentPrincipal, read_pool: ReadPool,
                          limit: Limit = 25, cursor: Cursor = None, owner_id: FromQuery[str | None] = None,
                          include_revoked: FromQuery[bool] = False) -> Page[TokenListing]:
        """The caller's own personal tokens (never their secrets), with `last_used_at`. Admins
        (`api_tokens:admin`) may pass `owner_id=usr_…` or `owner_id=*` for everyone's."""
        owner: str | None = owner_id or principal.subject
        if owner != principal.subject:
            if not _is_admin(principal):
                raise ApiError(403, "forbidden", f"Listing others' tokens needs the scope {ADMIN_SCOPE}",
                               {"required_scope": ADMIN_SCOPE})
            owner = None if owner == "*" else owner
        async with tenant_transaction(read_pool, principal.workspace_id) as conn:
            rows, total = await queries.list_tokens(conn, principal.workspace_id, kinds=[TokenKind.PERSONAL.value],
                                                    owner_id=owner, include_revoked=include_revoked,
                                                    after=common.after_of(request, cursor), limit=limit + 1)
        return common.keyset_page(request, rows, limit, total)

    @post("/{token_id:str}/rotate", guards=[requires(SCOPE)], status_code=200, opt=SECRET_RESPONSE,
          responses=error_responses(e403=NOT_A_USER, e422="invalid_transition: the token is revoked or expired"))
    async def rotate_api_token(self, state: State, token_id: FromPath[str], principal: CurrentPrincipal,
                               commands: Commands,
                     caller: Who, read_pool: ReadPool) -> Response[IssuedToken]:
        """Issue a new secret for one of the caller's tokens; the old secret stops working at once.
        A revoked or expired token cannot be rotated (422 `invalid_transition`); nor can one with a scope the
        caller lacks or outliving the caller's own API token (403)."""
        public_id = common.ref("tok", "token", token_id)
        issued = await commands.rotate_token(caller, public_id, kinds=PERSONAL, owner_id=_user(principal),
                                             grant=common.grant_of(principal))
        headers = await common.settle(state, issued)
        current = await common.read_token(read_pool, principal.workspace_id, public_id)
        view = common.token_view(issued, last_used_at=current.last_used_at if current else None)
        return Response(common.issued(view, issued.revealed), headers=headers)

    @delete("/{token_id:str}", guards=[requires(SCOPE)], status_code=204, responses=error_responses(e403=NOT_A_USER))
    async def revoke_api_token(self, state: State, token_id: FromPath[str], principal: CurrentPrincipal,
                               commands: Commands,
                     caller: Who) -> Response[None]:
        """Revoke a token: 401 on its next use, and it can never be reactivated. Admins may revoke anyone's."""
        public_id = common.ref("tok", "token", token_id)
        owner = None if _is_admin(principal) else _user(principal)
        accepted = await commands.revoke_token(caller, public_id, kinds=PERSONAL, owner_id=owner)
        return Response(None, status_code=204, headers=await common.settle(state, accepted))
