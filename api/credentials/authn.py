"""Opaque-token authentication: `clp_pat_…` and `clp_sa_…` on /v1, `clp_scim_…` on /scim/v2 only.

The secret's SHA-256 is looked up with one call of the SECURITY DEFINER function `authenticate_token`
(projections/credentials/schema.sql): before the lookup nobody knows the workspace, so the tenant's RLS
context cannot exist yet; the function answers only for the exact hash, and only usable tokens (it also notes
the token's use, at most once a minute). The answer is kept with the caller's standing (api/core/standing_cache.py)
until the token's workspace changes. Nothing here logs the secret or its hash.
"""

from __future__ import annotations

from datetime import UTC, datetime

from litestar.datastructures import State
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn
from adapters.secrets import hash_secret, kind_of
from adapters.tokens import Principal
from api.core.standing_cache import StandingCache
from domain.credentials.events import TokenKind
from domain.identity.roles import SCOPES_BY_ROLE, Role
from projections.credentials import queries
from projections.credentials.queries import Authenticated

V1_KINDS = frozenset({TokenKind.PERSONAL, TokenKind.SERVICE_ACCOUNT})
PRINCIPAL_KIND = {kind: kind.value for kind in TokenKind}
"""Principal.kind of an opaque token: `personal`, `service_account` or `scim` (the MFA check skips them all)."""


async def lookup(state: State, secret: str, allowed: frozenset[TokenKind]) -> tuple[TokenKind, Authenticated] | None:
    """The usable token behind `secret` when its kind (prefix and record agree) is one of `allowed`."""
    kind = kind_of(secret)
    if kind is None or kind not in allowed:
        return None
    digest = hash_secret(secret)
    pool: AsyncConnectionPool[AsyncConn] = state.read_pool

    async def read() -> Authenticated | None:
        async with pool.connection() as conn:
            return await queries.authenticate(conn, digest)

    cache: StandingCache = state.standing_cache
    found = await cache.get(("token", digest), read, lambda row: None if row is None else row.workspace_id)
    if found is None or found.kind != kind.value:
        return None
    if found.expires_at is not None and found.expires_at <= datetime.now(UTC):
        return None  # expired since it was looked up
    return kind, found


def _expiry(value: datetime | None) -> float:
    return 0 if value is None else value.timestamp()


async def resolve_api_token(secret: str, state: State) -> Principal | None:
    """The Principal of a personal or service-account token: its scopes narrowed to the CURRENT role's."""
    match = await lookup(state, secret, V1_KINDS)
    if match is None:
        return None
    kind, found = match
    try:
        role = Role(found.role or "")
    except ValueError:
        return None
    if found.owner_id is None:
        return None
    return Principal(subject=found.owner_id, workspace_id=found.workspace_id, role=role.value,
                     scopes=frozenset(found.scopes) & SCOPES_BY_ROLE[role], token_id=found.token_id,
                     expires_at=_expiry(found.expires_at), kind=PRINCIPAL_KIND[kind])
