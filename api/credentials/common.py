"""What the credential routes share: read-your-writes, folding responses, id checks, keyset pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import msgspec
from litestar import Request
from litestar.datastructures import State
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from adapters.tokens import ACCESS_TOKEN, Principal
from api.core.consistency import settle as settle_on
from api.core.errors import ApiError, error_responses, not_found
from api.core.pagination import Page, cursor_key, decode_cursor, page_of
from api.credentials.schemas import IssuedToken, ServiceAccountView
from commands.credentials import CredentialCommands, DuplicateName
from commands.runner import Result
from domain.credentials.events import AnyApiTokenEvent, AnyServiceAccountEvent
from domain.credentials.grants import Grant
from domain.identity.roles import Role
from domain.ids import canonical
from projections.credentials import queries
from projections.credentials.projector import NAME as CREDENTIALS_PROJECTION
from projections.credentials.queries import TokenListing
from projections.credentials.view import ServiceAccountRow, fold_service_account, fold_token

SORT = "created_at"
DUPLICATE_NAME = error_responses(e409="conflict: an active token of the same owner has this name")
ABOVE_OWN = error_responses(e403="forbidden: a role or scope above your own (nobody grants more than they hold)")
T = TypeVar("T", TokenListing, ServiceAccountRow, ServiceAccountView)


def provide_credential_commands(state: State) -> CredentialCommands:
    commands: CredentialCommands = state.credential_commands
    return commands


async def settle(state: State, accepted: Result) -> dict[str, str]:
    """Read-your-writes: the 2xx waits for the `credentials` projection, so a revocation holds on every replica."""
    return await settle_on(state, (CREDENTIALS_PROJECTION, accepted.position))


def ref(prefix: str, kind: str, public_id: str) -> str:
    """Malformed ids and ids of another type are simply not found."""
    value = canonical(prefix, public_id)
    if value is None:
        raise not_found(kind, public_id)
    return value


def duplicate(exc: DuplicateName) -> ApiError:
    return ApiError(409, "conflict", f"A token named {exc.name!r} already exists", {"field": "name", "name": exc.name})


def grant_of(principal: Principal) -> Grant:
    """What the caller's credential may hand on: its current scopes, and its own expiry as the latest any
    credential it creates or rotates may expire. An access token is a person's sign-in (exchange and refresh mint
    them; `causeloop token` stands in for them in development): its 72-hour expiry is freshness, not a bound,
    since the person can refresh or sign in again, so it bounds scopes only. An API token is a delegation:
    it bounds both (docs/security.md)."""
    if principal.kind == ACCESS_TOKEN or not principal.expires_at:
        return Grant(scopes=principal.scopes)
    return Grant(scopes=principal.scopes, expires_at=datetime.fromtimestamp(principal.expires_at, UTC))


def role_of(principal: Principal) -> Role:
    """The caller's current role (the membership check or the account record set it), for granting roles."""
    try:
        return Role(principal.role)
    except ValueError:
        raise ApiError(403, "forbidden", "This token carries no role that may grant one") from None


def token_view(accepted: Result, *, last_used_at: datetime | None = None) -> TokenListing:
    row = fold_token(cast(list[AnyApiTokenEvent], list(accepted.stream)))
    assert row is not None
    return TokenListing(id=row.id, kind=row.kind, owner_id=row.owner_id, name=row.name, scopes=row.scopes,
                        status=row.status, expires_at=row.expires_at, created_by=row.created_by,
                        created_at=row.created_at, rotated_at=row.rotated_at, revoked_at=row.revoked_at,
                        last_used_at=last_used_at)


def issued(listing: TokenListing, secret: str | None) -> IssuedToken:
    return IssuedToken(**msgspec.structs.asdict(listing), secret=secret or "")


def account_view(row: ServiceAccountRow) -> ServiceAccountView:
    fields = {name: getattr(row, name) for name in ServiceAccountView.__struct_fields__}
    return msgspec.convert(fields, ServiceAccountView)


def account_of(accepted: Result) -> ServiceAccountView:
    row = fold_service_account(cast(list[AnyServiceAccountEvent], list(accepted.stream)))
    assert row is not None
    return account_view(row)



def after_of(request: Request[Any, Any, Any], cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    payload = decode_cursor(cursor_key(request), cursor, SORT)
    return datetime.fromisoformat(str(payload["v"])), str(payload["i"])


def keyset_page(request: Request[Any, Any, Any], rows: list[T], limit: int, total: int) -> Page[T]:
    """A page of up to `limit + 1` rows sorted by (created_at, id)."""
    return page_of(rows, limit=limit, total=total, key=cursor_key(request), sort=SORT,
                   position=lambda row: {"v": row.created_at.isoformat(), "i": row.id})


async def read_token(pool: AsyncConnectionPool[AsyncConn], workspace_id: str, token_id: str) -> TokenListing | None:
    async with tenant_transaction(pool, workspace_id) as conn:
        return await queries.get_token(conn, workspace_id, token_id)
