"""SCIM reads over the `identity` read model: a workspace's members (active or suspended) as SCIM Users.

Run inside a tenant transaction: `memberships` is under RLS; `users` is global and read by id only via the join.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

Conn = AsyncConnection[Any]


class ScimMember(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    email: str
    name: str
    role: str
    status: str
    created_at: datetime
    updated_at: datetime
    version: int


_SELECT = ("SELECT u.id, u.email, u.name, m.role, m.status, m.joined_at AS created_at,"
           " greatest(m.updated_at, u.updated_at) AS updated_at, m.version"
           " FROM memberships m JOIN users u ON u.id = m.user_id"
           " WHERE m.workspace_id = %s AND m.status IN ('active', 'suspended')")


async def members(conn: Conn, workspace_id: str, *, email: str | None = None, role: str | None = None,
                  offset: int = 0, limit: int | None = None) -> tuple[list[ScimMember], int]:
    """(page, total) in join order; `email` compares in lower case (userName is case-insensitive)."""
    where, params = "", [workspace_id]
    if email is not None:
        where += " AND u.email = lower(%s)"
        params.append(email)
    if role is not None:
        where += " AND m.role = %s"
        params.append(role)
    count = await conn.execute(f"SELECT count(*) AS n FROM ({_SELECT}{where}) q", params)
    total_row = await count.fetchone()
    page = f"{_SELECT}{where} ORDER BY m.joined_at, m.user_id OFFSET %s"
    args: list[Any] = [*params, offset]
    if limit is not None:
        page += " LIMIT %s"
        args.append(limit)
    cur = await conn.execute(page, args)
    rows = [msgspec.convert(row, ScimMember, strict=False) for row in await cur.fetchall()]
    return rows, int(total_row["n"]) if total_row else 0


async def member(conn: Conn, workspace_id: str, user_id: str) -> ScimMember | None:
    cur = await conn.execute(f"{_SELECT} AND m.user_id = %s", (workspace_id, user_id))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, ScimMember, strict=False)
