"""Queries over the `issues` read model (run inside a tenant transaction: RLS narrows to one workspace)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
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


def _where(workspace_id: str, f: IssueFilters) -> sql.Composed:
    """The filters as SQL with their values inlined as literals (quoted by psycopg), so a whole list request can
    travel as one simple-protocol message."""
    clauses: list[sql.Composable] = [sql.SQL("workspace_id = {}").format(sql.Literal(workspace_id))]
    for column, values in (("status", f.status), ("severity", f.severity), ("stage", f.stage)):
        if values and len(values) == 1:  # `=` keeps the index's order usable; `= ANY` would force a sort
            clauses.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(values[0])))
        elif values:
            clauses.append(sql.SQL("{} = ANY({})").format(sql.Identifier(column), sql.Literal(list(values))))
    for column, value in (("pattern_id", f.pattern_id), ("source", f.source), ("team", f.team),
                          ("assignee_id", f.assignee_id)):
        if value is not None:
            clauses.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(value)))
    bounds: tuple[tuple[str, object], ...] = (
        ("risk_score >= {}", f.risk_min), ("risk_score <= {}", f.risk_max),
        ("created_at > {}", f.created_after), ("created_at < {}", f.created_before))
    for text, bound in bounds:
        if bound is not None:
            clauses.append(sql.SQL(text).format(sql.Literal(bound)))
    return sql.SQL(" AND ").join(clauses)


class _Key(msgspec.Struct):
    id: str
    sort_key: Any


_page_decoder = msgspec.json.Decoder(list[IssueView])
_keys_decoder = msgspec.json.Decoder(list[_Key])

Rows = list[dict[str, Any]]
Reader = Callable[[Sequence[sql.Composable]], Awaitable[list[Rows]]]
"""Runs statements as the tenant in one read-only transaction and round trip; one list of rows per statement."""


async def list_issues(read: Reader, workspace_id: str, filters: IssueFilters, *, sort: str, descending: bool,
                      limit: int, after: Keyset | None) -> tuple[list[IssueView], list[Keyset], int]:
    """A page of issues, the keyset of each row (for the next cursor), and the total across pages.

    `sort="rank"` orders by full-text relevance to `filters.q`. Keyset pagination (sort value, id) keeps
    pages stable while new issues arrive, unlike OFFSET. Postgres returns the page as one JSON array
    that msgspec decodes straight into structs, and the page and its total come back in one round trip.
    """
    if filters.q:
        ((row,),) = await read([_search_statement(workspace_id, filters, sort, descending, limit, after)])
        views, keys = _page_of(row["page"])
        return views, keys, int(row["n"])
    key, direction = _sort_key(sort), sql.SQL("DESC" if descending else "ASC")
    where = _where(workspace_id, filters)
    page_where = where
    if after is not None:
        op = sql.SQL("<") if descending else sql.SQL(">")
        page_where = sql.SQL("{} AND ({}, issues.id) {} ({}, {})").format(
            where, key, op, sql.Literal(after.value), sql.Literal(after.id))
    query = sql.SQL(
        "SELECT coalesce(json_agg(page ORDER BY page.sort_key {d}, page.id {d}), '[]')::text AS page FROM ("
        "SELECT {columns}, {key} AS sort_key FROM issues WHERE {where} ORDER BY {key} {d}, issues.id {d} "
        "LIMIT {limit}) page"
    ).format(columns=sql.SQL(QUALIFIED_COLUMNS), key=key, where=page_where, d=direction, limit=sql.Literal(limit))
    page_rows, total_rows = await read([query, _total_query(filters, where)])
    views, keys = _page_of(page_rows[0]["page"] if page_rows else "[]")
    total = int(total_rows[0]["n"]) if total_rows else 0
    if total > TOTAL_EXACT_UP_TO and not _only_counted(filters):
        total = await _estimate(read, where, total)
    return views, keys, total


def _page_of(page: object) -> tuple[list[IssueView], list[Keyset]]:
    raw = str(page).encode()
    return _page_decoder.decode(raw), [Keyset(item.sort_key, item.id) for item in _keys_decoder.decode(raw)]


def _sort_key(sort: str) -> sql.Composable:
    return sql.SQL("m.match_rank") if sort == "rank" else sql.Identifier(SORT_COLUMNS[sort])


def _search_statement(workspace_id: str, f: IssueFilters, sort: str, descending: bool, limit: int,
                      after: Keyset | None) -> sql.Composed:
    """Page and exact total of a full-text search in one statement that searches once.

    The hits (id and sort key; the matches of the workspace-guarded `issue_search`, joined to the issues only
    when other filters or another sort need their columns) are materialized once; only the page's rows are
    fetched whole. Counting and paging from the same hits halves the search work of two statements.
    """
    direction = sql.SQL("DESC" if descending else "ASC")
    hits: sql.Composable
    if sort == "rank" and _filtering(f) == {"q"}:  # the matches are the hits: no second materialization
        hits = sql.SQL("SELECT match_id AS id, match_rank AS sort_key FROM issue_search({q})").format(
            q=sql.Literal(f.q))
    else:
        hits = sql.SQL("SELECT issues.id, {key} AS sort_key FROM issues JOIN issue_search({q}) AS m "
                       "ON m.match_id = issues.id WHERE {where}").format(key=_sort_key(sort), q=sql.Literal(f.q),
                                                                         where=_where(workspace_id, f))
    keyset: sql.Composable = sql.SQL("")
    if after is not None:
        op = sql.SQL("<") if descending else sql.SQL(">")
        keyset = sql.SQL("WHERE (sort_key, id) {} ({}, {})").format(op, sql.Literal(after.value),
                                                                   sql.Literal(after.id))
    return sql.SQL(
        "WITH hits AS MATERIALIZED ({hits}) "
        "SELECT (SELECT coalesce(json_agg(page ORDER BY page.sort_key {d}, page.id {d}), '[]')::text FROM ("
        "SELECT {columns}, top.sort_key FROM (SELECT id, sort_key FROM hits {keyset} "
        "ORDER BY sort_key {d}, id {d} LIMIT {limit}) top "
        "JOIN issues ON issues.workspace_id = {ws} AND issues.id = top.id) page) AS page, "
        "(SELECT count(*) FROM hits) AS n"
    ).format(hits=hits, d=direction, columns=sql.SQL(QUALIFIED_COLUMNS), keyset=keyset,
             limit=sql.Literal(limit), ws=sql.Literal(workspace_id))


_COUNTED = frozenset({"status", "severity", "stage"})


def _filtering(f: IssueFilters) -> set[str]:
    return {name for name in IssueFilters.__struct_fields__ if getattr(f, name) is not None}


def _only_counted(f: IssueFilters) -> bool:
    return _filtering(f) <= _COUNTED


def _total_query(f: IssueFilters, where: sql.Composed) -> sql.Composed:
    """Exact from `issue_counts` when only status, severity and stage filter; else a count capped at 10,001.

    The same WHERE serves both: `issue_counts` has the workspace_id, status, severity and stage columns.
    """
    if _only_counted(f):
        return sql.SQL("SELECT coalesce(sum(n), 0) AS n FROM issue_counts WHERE {}").format(where)
    return sql.SQL("SELECT count(*) AS n FROM (SELECT 1 FROM issues WHERE {} LIMIT {}) capped").format(
        where, sql.Literal(TOTAL_EXACT_UP_TO + 1))


async def _estimate(read: Reader, where: sql.Composable, floor: int) -> int:
    """Above 10,000 matches the planner's estimate stands in for the count (as the public docs allow)."""
    (plan_rows,) = await read([sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM issues WHERE {}").format(where)])
    estimate = int(plan_rows[0]["QUERY PLAN"][0]["Plan"]["Plan Rows"]) if plan_rows else floor
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
