"""Reads for the member and invitation routes: the roster (memberships joined to users) and invitations.

Both run inside a tenant transaction: RLS on memberships and invitations limits them to one workspace.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

Conn = AsyncConnection[Any]


class MemberRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    user_id: str
    email: str
    name: str
    avatar_url: str | None
    role: str
    status: str
    joined_at: datetime
    updated_at: datetime
    version: int


class InvitationRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    email: str
    role: str
    status: str
    expires_at: datetime
    expired: bool
    invited_by: str
    accepted_user_id: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class Keyset(msgspec.Struct, frozen=True):
    at: datetime
    id: str


_MEMBER = sql.SQL(
    "SELECT m.id, m.user_id, u.email, u.name, u.avatar_url, m.role, m.status, m.joined_at, m.updated_at,"
    " m.version FROM memberships m JOIN users u ON u.id = m.user_id")
_INVITATION = sql.SQL(
    "SELECT id, email, role, status, expires_at, expires_at <= now() AS expired, invited_by, accepted_user_id,"
    " created_at, updated_at, version FROM invitations")


def _where(column_prefix: str, workspace_id: str, statuses: list[str] | None, roles: list[str] | None,
           hidden_status: str | None) -> tuple[sql.Composed, list[object]]:
    clauses: list[sql.Composable] = [sql.SQL(f"{column_prefix}workspace_id = %s")]
    params: list[object] = [workspace_id]
    if statuses:
        clauses.append(sql.SQL(f"{column_prefix}status = ANY(%s)"))
        params.append(statuses)
    elif hidden_status:
        clauses.append(sql.SQL(f"{column_prefix}status <> %s"))
        params.append(hidden_status)
    if roles:
        clauses.append(sql.SQL(f"{column_prefix}role = ANY(%s)"))
        params.append(roles)
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses), params


def _page(alias: str, column: str, descending: bool, after: Keyset | None,
          limit: int) -> tuple[sql.Composed, list[object]]:
    """Keyset pagination on (`column`, id), newest or oldest first."""
    order, compare = ("DESC", "<") if descending else ("ASC", ">")
    params: list[object] = []
    keyset = sql.SQL("")
    if after is not None:
        keyset = sql.SQL(f" AND ({alias}{column}, {alias}id) {compare} (%s, %s)")
        params += [after.at, after.id]
    tail = sql.SQL(f" ORDER BY {alias}{column} {order}, {alias}id {order} LIMIT %s")
    return keyset + tail, [*params, limit]


async def list_members(conn: Conn, workspace_id: str, *, statuses: list[str] | None, roles: list[str] | None,
                       descending: bool, after: Keyset | None, limit: int) -> tuple[list[MemberRow], int]:
    """Members in `statuses` (default: every member not removed), newest or oldest joined first."""
    where, params = _where("m.", workspace_id, statuses, roles, "removed")
    page, page_params = _page("m.", "joined_at", descending, after, limit)
    async with conn.cursor(row_factory=class_row(MemberRow)) as cur:
        await cur.execute(_MEMBER + where + page, [*params, *page_params])
        rows = await cur.fetchall()
    cur2 = await conn.execute(sql.SQL("SELECT count(*) AS n FROM memberships m") + where, params)
    total = await cur2.fetchone()
    return rows, _first(total)


async def member(conn: Conn, workspace_id: str, member_id: str) -> MemberRow | None:
    """One member by `mem_` id; removed members are gone (404)."""
    async with conn.cursor(row_factory=class_row(MemberRow)) as cur:
        await cur.execute(_MEMBER + sql.SQL(" WHERE m.workspace_id = %s AND m.id = %s AND m.status <> 'removed'"),
                          (workspace_id, member_id))
        return await cur.fetchone()


async def list_invitations(conn: Conn, workspace_id: str, *, statuses: list[str] | None, descending: bool,
                           after: Keyset | None, limit: int) -> tuple[list[InvitationRow], int]:
    where, params = _where("", workspace_id, statuses, None, None)
    page, page_params = _page("", "created_at", descending, after, limit)
    async with conn.cursor(row_factory=class_row(InvitationRow)) as cur:
        await cur.execute(_INVITATION + where + page, [*params, *page_params])
        rows = await cur.fetchall()
    cur2 = await conn.execute(sql.SQL("SELECT count(*) AS n FROM invitations") + where, params)
    return rows, _first(await cur2.fetchone())


async def invitation(conn: Conn, workspace_id: str, invitation_id: str) -> InvitationRow | None:
    async with conn.cursor(row_factory=class_row(InvitationRow)) as cur:
        await cur.execute(_INVITATION + sql.SQL(" WHERE workspace_id = %s AND id = %s"),
                          (workspace_id, invitation_id))
        return await cur.fetchone()


def _first(row: Any) -> int:
    if row is None:
        return 0
    return int(row["n"] if isinstance(row, dict) else row[0])
