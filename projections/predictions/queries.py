"""Reads of the `predictions` read model: predictions, their summary, forecast series and measured accuracy, and
alert rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

Conn = AsyncConnection[dict[str, Any]]


class PredictionView(msgspec.Struct, kw_only=True):
    id: str
    pattern_id: str
    probability: float
    window_days: int
    predicted_at: datetime
    expires_at: datetime
    likely_trigger: str
    impact: str
    status: str
    model_version: str
    explanation: str
    generated_probability: float
    """The probability when generated: the figure accuracy scores (later recomputes change `probability`)."""
    rate_per_day: float
    sample_size: int
    last_seen_at: datetime
    resolved_at: datetime | None
    recurred: bool | None
    recurred_at: datetime | None
    feedback: str | None
    version: int
    updated_at: datetime


_COLUMNS = ", ".join(PredictionView.__struct_fields__)


class PredictionFilters(msgspec.Struct, kw_only=True):
    pattern_id: str | None = None
    status: list[str] | None = None
    impact: list[str] | None = None
    min_probability: float | None = None
    window_days: int | None = None


def _where(workspace_id: str, filters: PredictionFilters) -> tuple[str, list[Any]]:
    clauses = ["workspace_id = %s"]
    values: list[Any] = [workspace_id]
    if filters.pattern_id is not None:
        clauses.append("pattern_id = %s")
        values.append(filters.pattern_id)
    if filters.status:
        clauses.append("status = ANY(%s)")
        values.append(filters.status)
    if filters.impact:
        clauses.append("impact = ANY(%s)")
        values.append(filters.impact)
    if filters.min_probability is not None:
        clauses.append("probability >= %s")
        values.append(filters.min_probability)
    if filters.window_days is not None:
        clauses.append("window_days = %s")
        values.append(filters.window_days)
    return " AND ".join(clauses), values


SORTS = {"predicted_at": "predicted_at", "probability": "probability", "expires_at": "expires_at"}


async def list_predictions(conn: Conn, workspace_id: str, filters: PredictionFilters, *, sort: str,
                           descending: bool, limit: int, offset: int) -> tuple[list[PredictionView], int]:
    where, values = _where(workspace_id, filters)
    direction = "DESC" if descending else "ASC"
    cur = await conn.execute(
        f"SELECT {_COLUMNS}, count(*) OVER () AS total FROM predictions WHERE {where}"
        f" ORDER BY {SORTS[sort]} {direction}, id {direction} LIMIT %s OFFSET %s", [*values, limit, offset])
    rows = await cur.fetchall()
    total = int(rows[0]["total"]) if rows else await _count(conn, where, values)
    return [msgspec.convert({k: v for k, v in row.items() if k != "total"}, PredictionView) for row in rows], total


async def _count(conn: Conn, where: str, values: list[Any]) -> int:
    cur = await conn.execute(f"SELECT count(*) AS n FROM predictions WHERE {where}", values)
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def get_prediction(conn: Conn, workspace_id: str, prediction_id: str) -> PredictionView | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM predictions WHERE workspace_id = %s AND id = %s",
                             (workspace_id, prediction_id))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, PredictionView)


class Summary(msgspec.Struct, kw_only=True):
    window_days: int
    total: int
    high_probability: int
    """Active predictions with probability ≥ 0.80."""
    above_threshold: int
    """Active predictions at or above the workspace's alert threshold."""
    alert_threshold: float
    average_probability: float | None


async def summary(conn: Conn, workspace_id: str, window_days: int, threshold: float) -> Summary:
    cur = await conn.execute(
        "SELECT count(*) AS total, count(*) FILTER (WHERE probability >= 0.8) AS high,"
        " count(*) FILTER (WHERE probability >= %s) AS above, avg(probability) AS average"
        " FROM predictions WHERE workspace_id = %s AND window_days = %s AND status = 'active'",
        (threshold, workspace_id, window_days))
    row = await cur.fetchone()
    assert row is not None
    average = None if row["average"] is None else round(float(row["average"]), 4)
    return Summary(window_days=window_days, total=int(row["total"]), high_probability=int(row["high"]),
                   above_threshold=int(row["above"]), alert_threshold=threshold, average_probability=average)


class Accuracy(msgspec.Struct, kw_only=True):
    window_days: int | None
    resolved: int
    """Predictions whose window ended or whose pattern recurred (dismissed ones included: dismissing is not an
    outcome)."""
    recurred: int
    threshold: float
    """A prediction at or above it counts as "predicted to recur" for precision and recall."""
    precision: float | None
    recall: float | None
    brier: float | None
    lead_time_days: float | None
    """Mean days from prediction to recurrence, over the true positives."""
    feedback_accurate: int
    feedback_inaccurate: int


async def accuracy(conn: Conn, workspace_id: str, window_days: int | None, threshold: float) -> Accuracy:
    cur = await conn.execute(
        "SELECT generated_probability AS p, recurred, extract(epoch FROM recurred_at - predicted_at) AS lead,"
        " feedback FROM predictions WHERE workspace_id = %s AND resolved_at IS NOT NULL"
        " AND (%s::int IS NULL OR window_days = %s::int)", (workspace_id, window_days, window_days))
    rows = await cur.fetchall()
    feedback = await conn.execute(
        "SELECT count(*) FILTER (WHERE feedback = 'accurate') AS good, count(*) FILTER (WHERE feedback = 'inaccurate')"
        " AS bad FROM predictions WHERE workspace_id = %s AND (%s::int IS NULL OR window_days = %s::int)",
        (workspace_id, window_days, window_days))
    counts = await feedback.fetchone()
    assert counts is not None
    tp = [r for r in rows if r["recurred"] and r["p"] >= threshold]
    fp = sum(1 for r in rows if not r["recurred"] and r["p"] >= threshold)
    fn = sum(1 for r in rows if r["recurred"] and r["p"] < threshold)
    recurred = sum(1 for r in rows if r["recurred"])
    brier = sum((r["p"] - (1.0 if r["recurred"] else 0.0)) ** 2 for r in rows) / len(rows) if rows else None
    lead = [float(r["lead"]) / 86_400 for r in tp if r["lead"] is not None]
    return Accuracy(
        window_days=window_days, resolved=len(rows), recurred=recurred, threshold=threshold,
        precision=round(len(tp) / (len(tp) + fp), 4) if tp or fp else None,
        recall=round(len(tp) / (len(tp) + fn), 4) if tp or fn else None,
        brier=None if brier is None else round(brier, 4),
        lead_time_days=round(sum(lead) / len(lead), 3) if lead else None,
        feedback_accurate=int(counts["good"]), feedback_inaccurate=int(counts["bad"]))


class SeriesPoint(msgspec.Struct, kw_only=True):
    date: str
    value: float


class Forecast(msgspec.Struct, kw_only=True):
    pattern_id: str | None
    window_days: int
    threshold: float
    observed: list[SeriesPoint]
    """Daily composite risk observed over the last 14 days: the highest probability among the predictions live
    each day (days with none left out)."""
    projected: list[SeriesPoint]
    """Projected: the probability of recurring by each coming day, from the current predictions' rates."""
    breach: SeriesPoint | None
    """The first projected day at or above the threshold, if any."""


async def observed_series(conn: Conn, workspace_id: str, pattern_id: str | None, window_days: int,
                          since: datetime, days: int) -> list[tuple[str, float]]:
    """Per UTC day from `since`: the highest probability among the predictions live that day (made by its end,
    not resolved before its start); days with none are left out."""
    cur = await conn.execute(
        "SELECT to_char(d.day, 'YYYY-MM-DD') AS day, max(p.probability) AS value"
        " FROM generate_series(%s::timestamptz, %s::timestamptz + make_interval(days => %s - 1), interval '1 day')"
        " AS d(day) JOIN predictions p ON p.workspace_id = %s AND p.window_days = %s"
        " AND (%s::text IS NULL OR p.pattern_id = %s::text) AND p.predicted_at < d.day + interval '1 day'"
        " AND (p.resolved_at IS NULL OR p.resolved_at >= d.day) GROUP BY d.day ORDER BY d.day",
        (since, since, days, workspace_id, window_days, pattern_id, pattern_id))
    return [(str(r["day"]), float(r["value"])) for r in await cur.fetchall()]


async def active_rates(conn: Conn, workspace_id: str, pattern_id: str | None, window_days: int
                       ) -> list[tuple[float, float]]:
    """(probability, rate per day) of the active predictions in scope."""
    cur = await conn.execute(
        "SELECT probability, rate_per_day FROM predictions WHERE workspace_id = %s AND window_days = %s"
        " AND status = 'active' AND (%s::text IS NULL OR pattern_id = %s::text)",
        (workspace_id, window_days, pattern_id, pattern_id))
    return [(float(r["probability"]), float(r["rate_per_day"])) for r in await cur.fetchall()]


class AlertThresholdView(msgspec.Struct, kw_only=True):
    probability: float
    window_days: int


class AlertRuleView(msgspec.Struct, kw_only=True):
    id: str
    name: str
    scope: str
    threshold: AlertThresholdView
    channels: list[str]
    enabled: bool
    snoozed_until: datetime | None
    fired_count: int
    last_fired_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


_RULE_COLUMNS = ("id, name, scope, probability, window_days, channels, enabled, snoozed_until, fired_count,"
                 " last_fired_at, version, created_at, updated_at")


def _rule(row: dict[str, Any]) -> AlertRuleView:
    data = dict(row)
    data["threshold"] = {"probability": data.pop("probability"), "window_days": data.pop("window_days")}
    return msgspec.convert(data, AlertRuleView)


async def list_rules(conn: Conn, workspace_id: str, limit: int, offset: int) -> tuple[list[AlertRuleView], int]:
    cur = await conn.execute(
        f"SELECT {_RULE_COLUMNS}, count(*) OVER () AS total FROM alert_rules WHERE workspace_id = %s AND NOT deleted"
        " ORDER BY created_at, id LIMIT %s OFFSET %s", (workspace_id, limit, offset))
    rows = await cur.fetchall()
    total = int(rows[0]["total"]) if rows else 0
    if not rows and offset:
        counted = await conn.execute("SELECT count(*) AS n FROM alert_rules WHERE workspace_id = %s AND NOT deleted",
                                     (workspace_id,))
        found = await counted.fetchone()
        total = int(found["n"]) if found else 0
    return [_rule({k: v for k, v in row.items() if k != "total"}) for row in rows], total


async def get_rule(conn: Conn, workspace_id: str, rule_id: str) -> AlertRuleView | None:
    cur = await conn.execute(f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE workspace_id = %s AND id = %s"
                             " AND NOT deleted", (workspace_id, rule_id))
    row = await cur.fetchone()
    return None if row is None else _rule(row)
