"""Queries over the `issues` read model (run inside a tenant transaction: RLS narrows to one workspace)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql

from projections.issues.projector import VIEW_COLUMNS, from_row
from projections.issues.view import IssueView

Conn = AsyncConnection[dict[str, Any]]
TOTAL_EXACT_UP_TO = 10_000
QUALIFIED_COLUMNS = ", ".join(f"issues.{name}" for name in VIEW_COLUMNS.split(", "))

SORT_COLUMNS = {"created_at": "created_at", "updated_at": "updated_at", "risk_score": "risk_score",
                "severity": "severity_rank"}


class IssueFilters(msgspec.Struct, frozen=True, kw_only=True):
    status: list[str] | None = None
    severity: list[str] | None = None
    pattern_id: str | None = None
    q: str | None = None
    source: str | None = None
    team: str | None = None
    stage: list[str] | None = None
    assignee_id: str | None = None
    risk_min: int | None = None
    risk_max: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class Keyset(msgspec.Struct, frozen=True):
    """Where the previous page ended: the sort value and id of its last row."""

    value: Any
    id: str


class Activity(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    version: int
    position: int
    actor: dict[str, Any]
    occurred_at: datetime
    data: dict[str, Any]


class Comment(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issue_id: str
    author: dict[str, Any]
    body: str
    created_at: datetime


def _where(workspace_id: str, f: IssueFilters) -> tuple[sql.Composed, list[Any]]:
    clauses: list[sql.Composable] = [sql.SQL("workspace_id = %s")]
    params: list[Any] = [workspace_id]
    for column, values in (("status", f.status), ("severity", f.severity), ("stage", f.stage)):
        if values and len(values) == 1:  # `=` keeps the index's order usable; `= ANY` would force a sort
            clauses.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(values[0])
        elif values:
            clauses.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(column)))
            params.append(values)
    for column, value in (("pattern_id", f.pattern_id), ("source", f.source), ("team", f.team),
                          ("assignee_id", f.assignee_id)):
        if value is not None:
            clauses.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    bounds: tuple[tuple[str, object], ...] = (
        ("risk_score >= %s", f.risk_min), ("risk_score <= %s", f.risk_max),
        ("created_at > %s", f.created_after), ("created_at < %s", f.created_before))
    for text, bound in bounds:
        if bound is not None:
            clauses.append(sql.SQL(text))
            params.append(bound)
    return sql.SQL(" AND ").join(clauses), params


def _source(f: IssueFilters) -> tuple[sql.Composable, list[Any]]:
    """The rows to filter: all issues, or those matching `q` (joined with their rank as `m.match_rank`)."""
    if not f.q:
        return sql.SQL("issues"), []
    return sql.SQL("issues JOIN issue_search(%s) AS m ON m.match_id = issues.id"), [f.q]


class _Key(msgspec.Struct):
    id: str
    sort_key: Any


_page_decoder = msgspec.json.Decoder(list[IssueView])
_keys_decoder = msgspec.json.Decoder(list[_Key])


async def list_issues(conn: Conn, workspace_id: str, filters: IssueFilters, *, sort: str, descending: bool,
                      limit: int, after: Keyset | None) -> tuple[list[IssueView], list[Keyset], int]:
    """A page of issues, the keyset of each row (for the next cursor), and the total across pages.

    `sort="rank"` orders by full-text relevance to `filters.q`. Keyset pagination (sort value, id) keeps
    pages stable while new issues arrive, unlike OFFSET. Postgres returns the page as one JSON array
    that msgspec decodes straight into structs, and the page and its total go out in one round trip.
    """
    where, params = _where(workspace_id, filters)
    source, source_params = _source(filters)
    key: sql.Composable = sql.SQL("m.match_rank") if sort == "rank" else sql.Identifier(SORT_COLUMNS[sort])
    page_where, page_params = where, list(params)
    if after is not None:
        op = sql.SQL("<") if descending else sql.SQL(">")
        page_where = sql.SQL("{} AND ({}, issues.id) {} (%s, %s)").format(where, key, op)
        page_params += [after.value, after.id]
    direction = sql.SQL("DESC" if descending else "ASC")
    query = sql.SQL(
        "SELECT coalesce(json_agg(page ORDER BY page.sort_key {d}, page.id {d}), '[]')::text AS page FROM ("
        "SELECT {columns}, {key} AS sort_key FROM {source} WHERE {where} ORDER BY {key} {d}, issues.id {d} "
        "LIMIT %s) page"
    ).format(columns=sql.SQL(QUALIFIED_COLUMNS), key=key, source=source, where=page_where, d=direction)
    total_query, total_params = _total_query(filters, source, [*source_params, *params], where)
    async with conn.pipeline():
        page_cur = await conn.execute(query, [*source_params, *page_params, limit])
        total_cur = await conn.execute(total_query, total_params)
        page_row = await page_cur.fetchone()
        total_row = await total_cur.fetchone()
    raw = str(page_row["page"]).encode() if page_row else b"[]"
    views = _page_decoder.decode(raw)
    keys = [Keyset(item.sort_key, item.id) for item in _keys_decoder.decode(raw)]
    total = int(total_row["n"]) if total_row else 0
    if total > TOTAL_EXACT_UP_TO and not _only_counted(filters):
        total = await _estimate(conn, source, where, [*source_params, *params], total)
    return views, keys, total


_COUNTED = frozenset({"status", "severity", "stage"})


def _only_counted(f: IssueFilters) -> bool:
    return {name for name in IssueFilters.__struct_fields__ if getattr(f, name) is not None} <= _COUNTED


def _total_query(f: IssueFilters, source: sql.Composable, params: list[Any],
                 where: sql.Composed) -> tuple[sql.Composed, list[Any]]:
    """Exact from `issue_counts` when only status, severity and stage filter; else a count capped at 10,001.

    The same WHERE serves both: `issue_counts` has the workspace_id, status, severity and stage columns.
    """
    if _only_counted(f):
        return sql.SQL("SELECT coalesce(sum(n), 0) AS n FROM issue_counts WHERE {}").format(where), params
    capped = sql.SQL("SELECT count(*) AS n FROM (SELECT 1 FROM {} WHERE {} LIMIT %s) capped").format(source, where)
    return capped, [*params, TOTAL_EXACT_UP_TO + 1]


async def _estimate(conn: Conn, source: sql.Composable, where: sql.Composable, params: list[Any],
                    floor: int) -> int:
    """Above 10,000 matches the planner's estimate stands in for the count (as the public docs allow)."""
    cur = await conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {} WHERE {}").format(source, where), params)
    plan = await cur.fetchone()
    estimate = int(plan["QUERY PLAN"][0]["Plan"]["Plan Rows"]) if plan else floor
    return max(estimate, floor)


async def get_issue(conn: Conn, workspace_id: str, issue_id: str) -> IssueView | None:
    cur = await conn.execute(f"SELECT {VIEW_COLUMNS} FROM issues WHERE workspace_id = %s AND id = %s",
                             (workspace_id, issue_id))
    row = await cur.fetchone()
    return None if row is None else from_row(row)


async def list_activity(conn: Conn, workspace_id: str, issue_id: str, *, limit: int,
                        before_version: int | None) -> list[Activity]:
    """The issue's history, newest first."""
    cur = await conn.execute(
        "SELECT id::text AS id, type, version, position, actor, occurred_at, data FROM issue_activity"
        " WHERE workspace_id = %s AND issue_id = %s AND version < %s ORDER BY version DESC LIMIT %s",
        (workspace_id, issue_id, before_version if before_version is not None else 2**31 - 1, limit))
    return [msgspec.convert(row, Activity) for row in await cur.fetchall()]


async def count_activity(conn: Conn, workspace_id: str, issue_id: str) -> int:
    cur = await conn.execute("SELECT count(*) AS n FROM issue_activity WHERE workspace_id = %s AND issue_id = %s",
                             (workspace_id, issue_id))
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def list_comments(conn: Conn, workspace_id: str, issue_id: str, *, limit: int,
                        after: Keyset | None) -> tuple[list[Comment], int]:
    """Oldest first, so a conversation reads top to bottom."""
    after_clause = "AND (created_at, id) > (%s, %s)" if after else ""
    params: list[Any] = [workspace_id, issue_id, *([after.value, after.id] if after else []), limit]
    cur = await conn.execute(
        f"SELECT id, issue_id, author, body, created_at FROM issue_comments WHERE workspace_id = %s"
        f" AND issue_id = %s {after_clause} ORDER BY created_at, id LIMIT %s", params)
    comments = [msgspec.convert(row, Comment) for row in await cur.fetchall()]
    cur = await conn.execute("SELECT count(*) AS n FROM issue_comments WHERE workspace_id = %s AND issue_id = %s",
                             (workspace_id, issue_id))
    row = await cur.fetchone()
    return comments, int(row["n"]) if row else 0
