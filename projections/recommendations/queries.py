"""Reads of the `recommendations` read model, as the API serves them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from psycopg import AsyncConnection

Conn = AsyncConnection[dict[str, Any]]

SORT_COLUMNS = {"rank": "rank", "created_at": "created_at", "expected_loops_prevented": "expected_loops_prevented",
                "updated_at": "updated_at"}


class StepView(msgspec.Struct, kw_only=True):
    id: str
    title: str
    description: str
    completed: bool
    completed_at: datetime | None = None


class Verification(msgspec.Struct, kw_only=True):
    state: str
    """`none`, `watching` (proof window running), `verified` (it passed clean), `reopened` (a matching issue)."""
    proof_window_days: int | None
    watching_since: datetime | None
    window_ends_at: datetime | None
    verified_at: datetime | None
    reopened_at: datetime | None
    reopened_by_issue_id: str | None
    explanation: str | None


class TicketView(msgspec.Struct, kw_only=True):
    """A ticket created for the recommendation in an issue tracker (`POST /v1/recommendations/{id}/push`)."""

    tracker: str
    project: str
    """The Jira project key, or the GitHub `owner/repo`."""
    key: str
    """The tracker's id of the ticket: the Jira issue key (`RISK-12`), or `owner/repo#number` on GitHub."""
    url: str
    connector_id: str
    pushed_at: datetime


class RecommendationView(msgspec.Struct, kw_only=True):
    id: str
    rank: int
    title: str
    type: str
    impact: str
    effort: str
    status: str
    expected_loops_prevented: float
    pattern_id: str
    playbook: str
    overview: str
    steps: list[StepView]
    dismissed_reason: str | None
    verification: Verification
    ticket: TicketView | None
    """The latest ticket pushed (null until pushed); `tickets` lists every one, oldest first."""
    tickets: list[TicketView]
    version: int
    created_at: datetime
    updated_at: datetime


class RecommendationFilters(msgspec.Struct, kw_only=True):
    status: list[str] | None = None
    type: list[str] | None = None
    impact: list[str] | None = None
    pattern_id: str | None = None


_COLUMNS = ("id, rank, title, type, impact, effort, status, expected_loops_prevented, pattern_id, playbook, overview,"
            " steps, dismissed_reason, verification_state, proof_window_days, watching_since, verified_at,"
            " reopened_at, reopened_by_issue_id, verification_explanation, tickets, version, created_at, updated_at")


def _view(row: dict[str, Any]) -> RecommendationView:
    tickets = msgspec.convert(row["tickets"], list[TicketView])
    ends = (row["watching_since"] + timedelta(days=row["proof_window_days"])
            if row["watching_since"] is not None and row["proof_window_days"] is not None else None)
    return RecommendationView(
        id=row["id"], rank=row["rank"], title=row["title"], type=row["type"], impact=row["impact"],
        effort=row["effort"], status=row["status"], expected_loops_prevented=row["expected_loops_prevented"],
        pattern_id=row["pattern_id"], playbook=row["playbook"], overview=row["overview"],
        steps=msgspec.convert(row["steps"], list[StepView]), dismissed_reason=row["dismissed_reason"],
        verification=Verification(state=row["verification_state"], proof_window_days=row["proof_window_days"],
                                  watching_since=row["watching_since"], window_ends_at=ends,
                                  verified_at=row["verified_at"], reopened_at=row["reopened_at"],
                                  reopened_by_issue_id=row["reopened_by_issue_id"],
                                  explanation=row["verification_explanation"]),
        ticket=tickets[-1] if tickets else None, tickets=tickets, version=row["version"],
        created_at=row["created_at"], updated_at=row["updated_at"])


async def list_recommendations(conn: Conn, workspace_id: str, filters: RecommendationFilters, *, sort: str,
                               descending: bool, limit: int, offset: int) -> tuple[list[RecommendationView], int]:
    where = ["workspace_id = %s"]
    values: list[Any] = [workspace_id]
    for column in ("status", "type", "impact"):
        chosen = getattr(filters, column)
        if chosen:
            where.append(f"{column} = ANY(%s)")
            values.append(chosen)
    if filters.pattern_id:
        where.append("pattern_id = %s")
        values.append(filters.pattern_id)
    clause = " AND ".join(where)
    direction = "DESC" if descending else "ASC"
    tie = "expected_loops_prevented DESC, " if sort == "rank" else ""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM recommendations WHERE {clause}"
        f" ORDER BY {SORT_COLUMNS[sort]} {direction}, {tie}id {direction} LIMIT %s OFFSET %s",
        (*values, limit, offset))
    rows = [_view(row) for row in await cur.fetchall()]
    total = await conn.execute(f"SELECT count(*) AS n FROM recommendations WHERE {clause}", values)
    found = await total.fetchone()
    return rows, int(found["n"]) if found else 0


async def get_recommendation(conn: Conn, workspace_id: str, recommendation_id: str) -> RecommendationView | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM recommendations WHERE workspace_id = %s AND id = %s",
                             (workspace_id, recommendation_id))
    row = await cur.fetchone()
    return None if row is None else _view(row)
