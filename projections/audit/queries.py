"""Queries over the `audit` read model (run inside a tenant transaction: RLS narrows to one workspace)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql

from projections import dead_letters
from projections.audit.chain import ChainCheck, Entry, Verdict
from projections.audit.projector import NAME

Conn = AsyncConnection[dict[str, Any]]
TOTAL_EXACT_UP_TO = 10_000
VERIFY_PAGE = 5_000
PARKED_LISTED = 100


class AuditFilters(msgspec.Struct, frozen=True, kw_only=True):
    """`since` inclusive, `until` exclusive; `action_prefix` matches `member.` and everything under it."""

    q: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    actor_id: str | None = None
    action: str | None = None
    action_prefix: str | None = None
    category: str | None = None


class AuditRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    seq: int
    occurred_at: datetime
    actor: dict[str, Any]
    actor_name: str | None
    action: str
    category: str
    target_type: str
    target_id: str | None
    metadata: dict[str, Any]
    ip: str | None
    prev_hash: str
    hash: str


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(workspace_id: str, f: AuditFilters) -> tuple[sql.Composed, list[Any]]:
    clauses: list[sql.Composable] = [sql.SQL("a.workspace_id = %s")]
    params: list[Any] = [workspace_id]
    simple: tuple[tuple[str, object], ...] = (
        ("a.occurred_at >= %s", f.since), ("a.occurred_at < %s", f.until), ("a.actor->>'id' = %s", f.actor_id),
        ("a.action = %s", f.action), ("a.category = %s", f.category))
    for text, value in simple:
        if value is not None:
            clauses.append(sql.SQL(text))
            params.append(value)
    if f.action_prefix is not None:
        clauses.append(sql.SQL("a.action LIKE %s"))
        params.append(_escape_like(f.action_prefix) + "%")
    if f.q:
        # Full text over action, actor id, target and metadata (GIN, via audit_search), or the actor's name.
        clauses.append(sql.SQL(
            "(a.seq IN (SELECT match_seq FROM audit_search(%s)) OR a.actor->>'id' IN ("
            "SELECT m.user_id FROM memberships m JOIN users n ON n.id = m.user_id"
            " WHERE m.workspace_id = %s AND n.name ILIKE %s))"))
        params += [f.q, workspace_id, "%" + _escape_like(f.q) + "%"]
    return sql.SQL(" AND ").join(clauses), params


_ROW_COLUMNS = sql.SQL(
    "a.id, a.seq, a.occurred_at, a.actor, u.name AS actor_name, a.action, a.category, a.target_type, a.target_id,"
    " a.metadata, a.ip, a.prev_hash, a.hash")
# The actor's name is read at query time from the identity read model, never copied into the entry.
_SOURCE = sql.SQL("audit_log a LEFT JOIN users u ON u.id = a.actor->>'id'")


async def list_entries(conn: Conn, workspace_id: str, filters: AuditFilters, *, limit: int,
                       before_seq: int | None) -> tuple[list[AuditRow], int]:
    """Newest first (by chain order), keyset on seq; and the total across pages (estimated above 10,000)."""
    where, params = _where(workspace_id, filters)
    rows = await _page(conn, where, params, limit, before_seq)
    cur = await conn.execute(sql.SQL("SELECT count(*) AS n FROM (SELECT 1 FROM audit_log a WHERE {} LIMIT %s) c")
                             .format(where), [*params, TOTAL_EXACT_UP_TO + 1])
    total = int((await cur.fetchone() or {"n": 0})["n"])
    if total > TOTAL_EXACT_UP_TO:
        cur = await conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM audit_log a WHERE {}").format(where),
                                 params)
        plan = await cur.fetchone()
        total = max(total, int(plan["QUERY PLAN"][0]["Plan"]["Plan Rows"]) if plan else total)
    return rows, total


async def _page(conn: Conn, where: sql.Composed, params: list[Any], limit: int,
                before_seq: int | None) -> list[AuditRow]:
    if before_seq is not None:
        where = sql.SQL("{} AND a.seq < %s").format(where)
        params = [*params, before_seq]
    cur = await conn.execute(sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY a.seq DESC LIMIT %s").format(
        _ROW_COLUMNS, _SOURCE, where), [*params, limit])
    return [msgspec.convert(row, AuditRow) for row in await cur.fetchall()]


async def page_after(conn: Conn, workspace_id: str, filters: AuditFilters, *, limit: int,
                     before_seq: int | None) -> list[AuditRow]:
    """One page without the total: what an export streams, page after page."""
    where, params = _where(workspace_id, filters)
    return await _page(conn, where, params, limit, before_seq)


async def _chain(conn: Conn, workspace_id: str) -> AsyncIterator[tuple[Entry, str, str]]:
    last = 0
    while True:
        cur = await conn.execute(
            "SELECT workspace_id, id, seq, position, occurred_at, actor, action, category, target_type, target_id,"
            " metadata, ip, prev_hash, hash FROM audit_log WHERE workspace_id = %s AND seq > %s ORDER BY seq"
            " LIMIT %s", (workspace_id, last, VERIFY_PAGE))
        rows = await cur.fetchall()
        for row in rows:
            entry = msgspec.convert({k: v for k, v in row.items() if k not in ("prev_hash", "hash")}, Entry)
            yield entry, str(row["prev_hash"]), str(row["hash"])
        if len(rows) < VERIFY_PAGE:
            return
        last = int(str(rows[-1]["seq"]))


async def verify_chain(conn: Conn, workspace_id: str) -> Verdict:
    """Recompute the workspace's whole chain from the stored entries (in one snapshot)."""
    check = ChainCheck()
    async for entry, prev_hash, stored_hash in _chain(conn, workspace_id):
        check.add(entry, prev_hash, stored_hash)
    return check.verdict()


async def missing_from_chain(conn: Conn, workspace_id: str) -> list[int]:
    """Positions of the workspace's events the projection parked instead of chaining (the first PARKED_LISTED):
    the chain is built from what was written, so no hash can show they are missing."""
    return await dead_letters.positions_in_workspace(conn, NAME, workspace_id, PARKED_LISTED)
