"""Queries over the `credentials` read model. All but `authenticate` run inside a tenant transaction (RLS)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters.postgres import READER_ROLE
from projections.credentials.projector import ACCOUNT_COLUMNS
from projections.credentials.view import ServiceAccountRow

Conn = AsyncConnection[dict[str, Any]]


class TokenListing(msgspec.Struct, frozen=True, kw_only=True):
    """A token as lists show it: never its secret nor its hash."""

    id: str
    kind: str
    owner_id: str | None
    name: str
    scopes: list[str]
    status: str
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class Authenticated(msgspec.Struct, frozen=True, kw_only=True):
    """What a usable opaque token stands for (see authenticate_token in schema.sql)."""

    token_id: str
    workspace_id: str
    kind: str
    owner_id: str | None
    scopes: list[str]
    expires_at: datetime | None
    role: str | None
    """The service account's current role, or the token owner's current membership role; None for SCIM."""


_LISTING = ("t.id, t.kind, t.owner_id, t.name, t.scopes, t.status, t.expires_at, t.created_by, t.created_at, "
            "t.rotated_at, t.revoked_at, u.last_used_at")


async def list_tokens(conn: Conn, workspace_id: str, *, kinds: list[str], owner_id: str | None,
                      include_revoked: bool, after: tuple[datetime, str] | None,
                      limit: int) -> tuple[list[TokenListing], int]:
    """(page, total): oldest first, keyset on (created_at, id); `owner_id` None means every owner of these kinds."""
    clauses = ["t.workspace_id = %s", "t.kind = ANY(%s)"]
    params: list[Any] = [workspace_id, kinds]
    if owner_id is not None:
        clauses.append("t.owner_id = %s")
        params.append(owner_id)
    if not include_revoked:
        clauses.append("t.status = 'active'")
    where = " AND ".join(clauses)
    count = await conn.execute(f"SELECT count(*) AS n FROM api_tokens t WHERE {where}", params)
    total = await count.fetchone()
    if after is not None:
        where += " AND (t.created_at, t.id) > (%s, %s)"
        params.extend(after)
    cur = await conn.execute(
        f"SELECT {_LISTING} FROM api_tokens t LEFT JOIN token_usage u ON u.token_id = t.id "
        f"WHERE {where} ORDER BY t.created_at, t.id LIMIT %s", [*params, limit])
    rows = [msgspec.convert(row, TokenListing, strict=False) for row in await cur.fetchall()]
    return rows, int(str(total["n"])) if total else 0


async def get_token(conn: Conn, workspace_id: str, token_id: str) -> TokenListing | None:
    cur = await conn.execute(
        f"SELECT {_LISTING} FROM api_tokens t LEFT JOIN token_usage u ON u.token_id = t.id "
        "WHERE t.workspace_id = %s AND t.id = %s", (workspace_id, token_id))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, TokenListing, strict=False)


async def active_token_ids(conn: Conn, workspace_id: str, owner_id: str) -> list[str]:
    cur = await conn.execute("SELECT id FROM api_tokens WHERE workspace_id = %s AND owner_id = %s "
                             "AND status = 'active' ORDER BY id", (workspace_id, owner_id))
    return [str(row["id"]) for row in await cur.fetchall()]


async def list_service_accounts(conn: Conn, workspace_id: str, *, after: tuple[datetime, str] | None,
                                limit: int) -> tuple[list[ServiceAccountRow], int]:
    """(page, total) of the live accounts, oldest first."""
    count = await conn.execute("SELECT count(*) AS n FROM service_accounts WHERE workspace_id = %s "
                               "AND status = 'active'", (workspace_id,))
    total = await count.fetchone()
    where, params = "workspace_id = %s AND status = 'active'", [workspace_id]
    if after is not None:
        where += " AND (created_at, id) > (%s, %s)"
        params.extend(after)  # type: ignore[arg-type]
    cur = await conn.execute(f"SELECT {ACCOUNT_COLUMNS} FROM service_accounts WHERE {where} "
                             "ORDER BY created_at, id LIMIT %s", [*params, limit])
    rows = [msgspec.convert(row, ServiceAccountRow, strict=False) for row in await cur.fetchall()]
    return rows, int(str(total["n"])) if total else 0


async def get_service_account(conn: Conn, workspace_id: str, account_id: str) -> ServiceAccountRow | None:
    """An active service account; a deleted one is gone (404), like one that never existed."""
    cur = await conn.execute(f"SELECT {ACCOUNT_COLUMNS} FROM service_accounts WHERE workspace_id = %s AND id = %s "
                             "AND status = 'active'", (workspace_id, account_id))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, ServiceAccountRow, strict=False)


async def authenticate(conn: Conn, secret_hash: str) -> Authenticated | None:
    """The usable token with this secret hash, across workspaces (a SECURITY DEFINER function: no tenant yet).

    Runs in one pipelined transaction as causeloop_reader: one round trip.
    """
    async with conn.pipeline(), conn.transaction():
        await conn.execute("SELECT set_config('role', %s, true)", (READER_ROLE,))
        cur = await conn.execute("SELECT * FROM authenticate_token(%s)", (secret_hash,))
        row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, Authenticated, strict=False)
