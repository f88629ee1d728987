"""Queries over the `issues` read model (run inside a tenant transaction: RLS narrows to one workspace)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql

from adapters.postgres import Statement
from projections.issues.view import IssueView

Conn = AsyncConnection[dict[str, Any]]
TOTAL_EXACT_UP_TO = 10_000
ESTIMATE_TRUSTED_FROM = 3 * TOTAL_EXACT_UP_TO
"""A ranked search's total is the planner's estimate only when that estimate is at least this (so a count of
10,000 or fewer stays exact); below it the matches are counted, up to 10,001."""

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


def _where(workspace_id: str, f: IssueFilters) -> Statement:
    """The filters as a WHERE condition with placeholders, and their values."""
    clauses: list[str] = ["workspace_id = %s"]
    params: list[object] = [workspace_id]
    for column, values in (("status", f.status), ("severity", f.severity), ("stage", f.stage)):
        if values and len(values) == 1:  # `=` keeps the index's order usable; `= ANY` would force a sort
            clauses.append(f"{column} = %s")
            params.append(values[0])
        elif values:
            clauses.append(f"{column} = ANY(%s)")
            params.append(list(values))
    for column, value in (("pattern_id", f.pattern_id), ("source", f.source), ("team", f.team),
                          ("assignee_id", f.assignee_id)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    bounds: tuple[tuple[str, object], ...] = (
        ("risk_score >= %s", f.risk_min), ("risk_score <= %s", f.risk_max),
        ("created_at > %s", f.created_after), ("created_at < %s", f.created_before))
    for condition, bound in bounds:
        if bound is not None:
            clauses.append(condition)
            params.append(bound)
    return Statement(" AND ".join(clauses), tuple(params))


Rows = list[dict[str, Any]]
Reader = Callable[[Sequence[Statement]], Awaitable[list[Rows]]]
"""Runs statements as the tenant in one read-only transaction and round trip; one list of rows per statement."""

DOCUMENT = sql.SQL("coalesce(issues.doc, json_build_object({fields})::text)").format(
    fields=sql.SQL(", ").join(sql.SQL("{}, issues.{}").format(sql.Literal(name), sql.Identifier(name))
                              for name in IssueView.__struct_fields__)).as_string()
"""The row's stored JSON document; rows written before documents were stored are rendered here instead."""


class IssuePage(msgspec.Struct, frozen=True):
    """Up to `limit + 1` issues as their JSON documents, each one's keyset (for the next cursor), and the total."""

    documents: list[str]
    keys: list[Keyset]
    total: int


async def list_issues(read: Reader, workspace_id: str, filters: IssueFilters, *, sort: str, descending: bool,
                      limit: int, after: Keyset | None, rank_window: int) -> IssuePage:
    """A page of issues, the keyset of each row (for the next cursor), and the total across pages.

    `sort="rank"` orders the `rank_window` most recent matches by full-text relevance to `filters.q`. Keyset
    pagination (sort value, id) keeps pages stable while new issues arrive, unlike OFFSET. Each issue comes back
    as the JSON document its row stores, which the API sends as is.
    """
    if filters.q and sort == "rank" and _filtering(filters) == {"q"}:
        return await _ranked_search(read, workspace_id, filters.q, descending, limit, after, rank_window)
    if filters.q:
        statement = _search_statement(workspace_id, filters, sort, descending, limit, after, rank_window)
        (rows,) = await read([statement])
        page = [row for row in rows if row["id"] is not None]
        return IssuePage(*_documents_and_keys(page), total=int(rows[0]["n"]) if rows else 0)
    key, direction = _sort_key(sort), "DESC" if descending else "ASC"
    where = _where(workspace_id, filters)
    keyset = Statement("")
    if after is not None:
        keyset = Statement(f" AND ({key}, issues.id) {'<' if descending else '>'} (%s, %s)", (after.value, after.id))
    query = Statement(
        f"SELECT issues.id, {key} AS sort_key, {DOCUMENT} AS doc FROM issues WHERE {where.text}{keyset.text} "
        f"ORDER BY {key} {direction}, issues.id {direction} LIMIT %s", (*where.params, *keyset.params, limit))
    page_rows, total_rows = await read([query, _total_query(filters, where)])
    total = int(total_rows[0]["n"]) if total_rows else 0
    if total > TOTAL_EXACT_UP_TO and not _only_counted(filters):
        total = await _estimate(read, where, total)
    return IssuePage(*_documents_and_keys(page_rows), total=total)


def _documents_and_keys(rows: Rows) -> tuple[list[str], list[Keyset]]:
    return [str(row["doc"]) for row in rows], [Keyset(row["sort_key"], str(row["id"])) for row in rows]


def _sort_key(sort: str) -> str:
    return "m.match_rank" if sort == "rank" else SORT_COLUMNS[sort]


def _page_of(ctes: Statement, source: str, total: str, workspace_id: str, descending: bool, limit: int,
             after: Keyset | None) -> Statement:
    """One row per issue of the page (or one row with no issue when the page is empty), each carrying `n`:
    the page is taken from the CTE `source` (id, sort_key) among `ctes`, `total` is one row with `n`."""
    direction = "DESC" if descending else "ASC"
    keyset = Statement("")
    if after is not None:
        keyset = Statement(f"WHERE (sort_key, id) {'<' if descending else '>'} (%s, %s)", (after.value, after.id))
    return Statement(
        f"WITH {ctes.text}, "
        f"top AS (SELECT id, sort_key FROM {source} {keyset.text} ORDER BY sort_key {direction}, id {direction} "
        "LIMIT %s) "
        f"SELECT total.n, page.id, page.sort_key, page.doc FROM ({total}) total "
        f"LEFT JOIN (SELECT top.id, top.sort_key, {DOCUMENT} AS doc FROM top "
        "JOIN issues ON issues.workspace_id = %s AND issues.id = top.id) page ON true "
        f"ORDER BY page.sort_key {direction}, page.id {direction}",
        (*ctes.params, *keyset.params, limit, workspace_id))


def _materialized(hits: Statement) -> Statement:
    return Statement(f"hits AS MATERIALIZED ({hits.text})", hits.params)


async def _ranked_search(read: Reader, workspace_id: str, q: str, descending: bool, limit: int,
                         after: Keyset | None, window: int) -> IssuePage:
    """`q` alone, by relevance: rank the `window` most recent matches only (`issue_search_window`), so the
    work is bounded however many issues match; every hit carries the total (exact up to 10,000: the matches
    counted by the same scan that found the window when there are few; above, the planner's estimate)."""
    hits = Statement("SELECT match_id AS id, match_rank AS sort_key, total FROM issue_search_window(%s, %s, %s, %s)",
                     (q, window, TOTAL_EXACT_UP_TO + 1, ESTIMATE_TRUSTED_FROM))
    statement = _page_of(Statement(f"hits AS MATERIALIZED ({hits.text}), "
                                   "total AS (SELECT coalesce(max(total), 0) AS n FROM hits)", hits.params),
                         "hits", "SELECT n FROM total", workspace_id, descending, limit, after)
    (rows,) = await read([statement])
    page = [row for row in rows if row["id"] is not None]
    return IssuePage(*_documents_and_keys(page), total=int(rows[0]["n"]) if rows else 0)


def _search_statement(workspace_id: str, f: IssueFilters, sort: str, descending: bool, limit: int,
                      after: Keyset | None, rank_window: int) -> Statement:
    """Page and exact total of a full-text search in one statement that searches once: one row per issue of
    the page, or one row with no issue when the page is empty; every row carries the total `n`.

    The hits (id and sort key; the matches of the workspace-guarded `issue_search`, joined to the issues only
    when other filters or another sort need their columns) are materialized once; only the page's rows are
    fetched whole. Counting and paging from the same hits halves the search work of two statements.
    """
    where = _where(workspace_id, f)
    if sort == "rank":  # the same window as `_ranked_search`: the most recent matches that pass the filters
        ctes = Statement(
            "hits AS MATERIALIZED (SELECT issues.id, issues.created_at, issues.search FROM issues "
            f"JOIN issue_search(%s) AS m ON m.match_id = issues.id WHERE {where.text}), "
            "ranked AS (SELECT id, ts_rank(search, websearch_to_tsquery('english', %s))::float8 AS sort_key "
            "FROM (SELECT id, search FROM hits ORDER BY created_at DESC, id DESC LIMIT %s) recent)",
            (f.q, *where.params, f.q, rank_window))
        return _page_of(ctes, "ranked", "SELECT count(*) AS n FROM hits", workspace_id, descending, limit, after)
    hits = Statement(f"SELECT issues.id, {_sort_key(sort)} AS sort_key FROM issues JOIN issue_search(%s) AS m "
                     f"ON m.match_id = issues.id WHERE {where.text}", (f.q, *where.params))
    return _page_of(_materialized(hits), "hits", "SELECT count(*) AS n FROM hits", workspace_id, descending, limit,
                    after)


_COUNTED = frozenset({"status", "severity", "stage"})


def _filtering(f: IssueFilters) -> set[str]:
    return {name for name in IssueFilters.__struct_fields__ if getattr(f, name) is not None}


def _only_counted(f: IssueFilters) -> bool:
    return _filtering(f) <= _COUNTED


def _total_query(f: IssueFilters, where: Statement) -> Statement:
    """Exact from `issue_counts` when only status, severity and stage filter; else a count capped at 10,001.

    The same WHERE serves both: `issue_counts` has the workspace_id, status, severity and stage columns.
    """
    if _only_counted(f):
        return Statement(f"SELECT coalesce(sum(n), 0) AS n FROM issue_counts WHERE {where.text}", where.params)
    return Statement(f"SELECT count(*) AS n FROM (SELECT 1 FROM issues WHERE {where.text} LIMIT %s) capped",
                     (*where.params, TOTAL_EXACT_UP_TO + 1))


async def _estimate(read: Reader, where: Statement, floor: int) -> int:
    """Above 10,000 matches the planner's estimate stands in for the count (as the public docs allow)."""
    (plan_rows,) = await read([Statement(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM issues WHERE {where.text}",
                                         where.params)])
    estimate = int(plan_rows[0]["QUERY PLAN"][0]["Plan"]["Plan Rows"]) if plan_rows else floor
    return max(estimate, floor)


_GET_DOCUMENT = f"SELECT version, {DOCUMENT} AS doc FROM issues WHERE workspace_id = %s AND id = %s".encode()


async def get_document(conn: Conn, workspace_id: str, issue_id: str) -> tuple[int, str] | None:
    """The issue's version (for its ETag) and its JSON document, as `GET /v1/issues/{id}` sends it."""
    cur = await conn.execute(_GET_DOCUMENT, (workspace_id, issue_id))
    row = await cur.fetchone()
    return None if row is None else (int(row["version"]), str(row["doc"]))


async def issue_exists(conn: Conn, workspace_id: str, issue_id: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM issues WHERE workspace_id = %s AND id = %s", (workspace_id, issue_id))
    return await cur.fetchone() is not None


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
