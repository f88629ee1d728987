"""Reads of the `patterns` read model, as the API serves them.

`risk_score` is computed when read (it decays with time since the pattern was last seen), from the formula in
docs/patterns.md:

    risk = round(100 * (0.35 * F + 0.25 * R + 0.25 * S + 0.15 * D))
    F = min(1, ln(1 + issue_count) / ln(51))              frequency: 50 issues or more is the maximum
    R = exp(-days since last_seen_at / 7)                  recency: halves in about 5 days
    S = (1.0 critical + 0.7 high + 0.4 medium + 0.1 low) / issue_count      severity mix
    D = min(1, (distinct services - 1) / 4)                spread: 5 services or more is the maximum

A pattern created by hand (`POST /v1/patterns`) shows the `risk_score` it was given until it has a member.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

Conn = AsyncConnection[dict[str, Any]]

RISK_SQL = """(CASE WHEN p.issue_count = 0 AND p.initial_risk IS NOT NULL THEN p.initial_risk ELSE round(100 * (
    0.35 * least(1.0, ln(1 + p.issue_count) / ln(51))
  + 0.25 * CASE WHEN p.last_seen_at IS NULL THEN 0
           ELSE exp(-greatest(0, extract(epoch FROM now() - p.last_seen_at)) / 604800.0) END
  + 0.25 * CASE WHEN p.issue_count = 0 THEN 0
           ELSE (1.0 * p.sev_critical + 0.7 * p.sev_high + 0.4 * p.sev_medium + 0.1 * p.sev_low) / p.issue_count END
  + 0.15 * least(1.0, greatest(0, cardinality(p.services) - 1) / 4.0)
))::int END)"""

SORT_COLUMNS = {"risk_score": RISK_SQL, "issue_count": "p.issue_count", "last_seen_at": "p.last_seen_at",
                "created_at": "p.created_at"}


class PatternFingerprint(msgspec.Struct, kw_only=True):
    domain: str | None = None
    service: str | None = None
    component: str | None = None
    error_signature: str
    hash: str


class PatternView(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: str
    risk_score: int
    confidence: float
    fingerprint: PatternFingerprint
    template: str
    tags: list[str]
    issue_count: int
    services: list[str]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    mttr_seconds: int | None
    merged_into: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class Member(msgspec.Struct, kw_only=True):
    issue_id: str
    title: str | None
    severity: str
    service: str | None
    similarity: float
    match_method: str
    fingerprint: str
    suggested_pattern_id: str | None
    suggested_similarity: float | None
    opened_at: datetime
    linked_at: datetime
    resolved_at: datetime | None


class SimilarIssue(msgspec.Struct, kw_only=True):
    issue_id: str
    title: str | None
    similarity: float
    earlier: bool
    pattern_id: str | None


class DayCount(msgspec.Struct, kw_only=True):
    date: str
    count: int


class PatternFilters(msgspec.Struct, frozen=True, kw_only=True):
    status: list[str] | None = None
    q: str | None = None
    domain: str | None = None
    service: str | None = None
    risk_min: int | None = None
    risk_max: int | None = None
    include_merged: bool = False


_COLUMNS = f"""p.id, p.name, p.status, {RISK_SQL} AS risk_score, p.confidence, p.fingerprint, p.template, p.tags,
p.issue_count, p.services, p.first_seen_at, p.last_seen_at, p.mttr_seconds, p.merged_into, p.version, p.created_at,
p.updated_at"""


def _view(row: dict[str, Any]) -> PatternView:
    return msgspec.convert({**row, "confidence": round(float(row["confidence"]), 4)}, PatternView)


def _where(workspace_id: str, filters: PatternFilters) -> tuple[list[str], list[Any]]:
    clauses = ["p.workspace_id = %s"]
    values: list[Any] = [workspace_id]
    if not filters.include_merged:
        clauses.append("p.merged_into IS NULL")
    if filters.status:
        clauses.append("p.status = ANY(%s)")
        values.append(filters.status)
    if filters.q:
        clauses.append("p.search @@ websearch_to_tsquery('english', %s)")
        values.append(filters.q)
    if filters.domain:
        clauses.append("p.fingerprint->>'domain' = %s")
        values.append(filters.domain)
    if filters.service:
        clauses.append("%s = ANY(p.services)")
        values.append(filters.service)
    if filters.risk_min is not None:
        clauses.append(f"{RISK_SQL} >= %s")
        values.append(filters.risk_min)
    if filters.risk_max is not None:
        clauses.append(f"{RISK_SQL} <= %s")
        values.append(filters.risk_max)
    return clauses, values


async def list_patterns(conn: Conn, workspace_id: str, filters: PatternFilters, *, sort: str, descending: bool,
                        limit: int, offset: int) -> tuple[list[PatternView], int]:
    """A page in the asked order (ties by id), and the total matching. Offsets: risk moves with time, so a keyset
    of it would not be stable across pages anyway."""
    clauses, values = _where(workspace_id, filters)
    where = " AND ".join(clauses)
    direction = "DESC" if descending else "ASC"
    nulls = "NULLS LAST" if descending else "NULLS FIRST"
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM patterns p WHERE {where}"
        f" ORDER BY {SORT_COLUMNS[sort]} {direction} {nulls}, p.id {direction} LIMIT %s OFFSET %s",
        [*values, limit, offset])
    rows = [_view(row) for row in await cur.fetchall()]
    total = await conn.execute(f"SELECT count(*) AS n FROM patterns p WHERE {where}", values)
    count = await total.fetchone()
    return rows, int(count["n"]) if count else 0


async def get_pattern(conn: Conn, workspace_id: str, pattern_id: str) -> PatternView | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM patterns p WHERE p.workspace_id = %s AND p.id = %s",
                             (workspace_id, pattern_id))
    row = await cur.fetchone()
    return _view(row) if row else None


async def list_members(conn: Conn, workspace_id: str, pattern_id: str, *, limit: int, offset: int
                       ) -> tuple[list[Member], int]:
    """Members, most recent first, with how each matched and its similarity."""
    cur = await conn.execute(
        "SELECT m.issue_id, i.title, m.severity, m.service, m.similarity, m.method AS match_method, m.fingerprint,"
        " m.suggested_pattern_id, m.suggested_similarity, m.opened_at, m.linked_at, m.resolved_at"
        " FROM pattern_members m LEFT JOIN issues i ON i.workspace_id = m.workspace_id AND i.id = m.issue_id"
        " WHERE m.workspace_id = %s AND m.pattern_id = %s ORDER BY m.opened_at DESC, m.issue_id DESC"
        " LIMIT %s OFFSET %s", (workspace_id, pattern_id, limit, offset))
    members = [msgspec.convert(row, Member) for row in await cur.fetchall()]
    total = await conn.execute("SELECT count(*) AS n FROM pattern_members WHERE workspace_id = %s"
                               " AND pattern_id = %s", (workspace_id, pattern_id))
    count = await total.fetchone()
    return members, int(count["n"]) if count else 0


async def frequency(conn: Conn, workspace_id: str, pattern_id: str, days: int) -> list[DayCount]:
    """Daily counts of the members' first-seen times over the last `days` days (UTC), zeros included."""
    cur = await conn.execute(
        "SELECT to_char(d.day, 'YYYY-MM-DD') AS date, count(m.issue_id)::int AS count"
        " FROM generate_series((now() AT TIME ZONE 'UTC')::date - (%s - 1), (now() AT TIME ZONE 'UTC')::date,"
        " interval '1 day') AS d(day)"
        " LEFT JOIN pattern_members m ON m.workspace_id = %s AND m.pattern_id = %s"
        " AND (m.opened_at AT TIME ZONE 'UTC')::date = d.day::date"
        " GROUP BY d.day ORDER BY d.day", (days, workspace_id, pattern_id))
    return [msgspec.convert(row, DayCount) for row in await cur.fetchall()]


async def similar_issues(conn: Conn, workspace_id: str, issue_id: str, *, earlier_only: bool, limit: int
                         ) -> list[SimilarIssue]:
    cur = await conn.execute(
        "SELECT s.other_id AS issue_id, i.title, s.similarity, s.earlier, i.pattern_id FROM issue_similar s"
        " LEFT JOIN issues i ON i.workspace_id = s.workspace_id AND i.id = s.other_id"
        " WHERE s.workspace_id = %s AND s.issue_id = %s AND (s.earlier OR NOT %s)"
        " ORDER BY s.similarity DESC, s.other_id LIMIT %s", (workspace_id, issue_id, earlier_only, limit))
    return [msgspec.convert(row, SimilarIssue) for row in await cur.fetchall()]
