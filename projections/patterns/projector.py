"""Writes the `patterns` read model from pattern events (and issue resolutions, for the time to resolve).

Each event is applied once (the projector runner filters positions at or below the checkpoint); after a batch,
the derived figures of every touched pattern (issue count, first and last seen, severity mix, services, MTTR,
confidence) are recomputed from its members in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from domain.ids import render
from domain.issues.events import IssueClosed, IssueReopened, IssueStatusChanged, Status
from domain.patterns.events import (
    IssueLinkedToPattern,
    IssueUnlinkedFromPattern,
    PatternDetected,
    PatternMerged,
    PatternUpdated,
)

NAME = "patterns"
VERSION = 1
CATEGORIES = frozenset({"pattern", "issue"})
TABLES = ("patterns", "pattern_members", "issue_similar")

Conn = AsyncConnection[dict[str, Any]]
_json = msgspec.json.Encoder()

_INSERT_PATTERN = """
INSERT INTO patterns (workspace_id, id, version, name, status, fingerprint, template, initial_risk,
    initial_confidence, confidence, created_at, updated_at)
VALUES (%s, %s, %s, %s, 'emerging', %s::jsonb, %s, %s, %s, coalesce(%s, 0), %s, %s) ON CONFLICT DO NOTHING
"""
_LINK = """
INSERT INTO pattern_members (workspace_id, pattern_id, issue_id, method, similarity, fingerprint, severity, service,
    opened_at, linked_at, suggested_pattern_id, suggested_similarity, resolved_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
        (SELECT resolved_at FROM pattern_members WHERE workspace_id = %s AND issue_id = %s AND resolved_at IS NOT NULL
         LIMIT 1))
ON CONFLICT (workspace_id, pattern_id, issue_id) DO UPDATE SET method = excluded.method,
    similarity = excluded.similarity, linked_at = excluded.linked_at
"""
_SIMILAR = """
INSERT INTO issue_similar (workspace_id, issue_id, other_id, similarity, earlier) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (workspace_id, issue_id, other_id) DO UPDATE SET similarity = excluded.similarity,
    earlier = excluded.earlier
"""
_UNLINK = "DELETE FROM pattern_members WHERE workspace_id = %s AND pattern_id = %s AND issue_id = %s"
_TOUCH = "UPDATE patterns SET version = %s, updated_at = %s WHERE workspace_id = %s AND id = %s"
_RESOLVED = "UPDATE pattern_members SET resolved_at = %s WHERE workspace_id = %s AND issue_id = %s RETURNING pattern_id"
_REFRESH = """
UPDATE patterns p SET issue_count = s.n, first_seen_at = s.first_seen, last_seen_at = s.last_seen,
    sev_critical = s.critical, sev_high = s.high, sev_medium = s.medium, sev_low = s.low,
    services = s.services, mttr_seconds = s.mttr,
    confidence = CASE WHEN s.n = 0 THEN coalesce(p.initial_confidence, 0) ELSE s.confidence END
FROM unnest(%s::text[], %s::text[]) AS t(workspace_id, id)
CROSS JOIN LATERAL (
    SELECT count(*) AS n, min(m.opened_at) AS first_seen, max(m.opened_at) AS last_seen,
           count(*) FILTER (WHERE m.severity = 'critical') AS critical,
           count(*) FILTER (WHERE m.severity = 'high') AS high,
           count(*) FILTER (WHERE m.severity = 'medium') AS medium,
           count(*) FILTER (WHERE m.severity = 'low') AS low,
           coalesce(array_agg(DISTINCT m.service ORDER BY m.service) FILTER (WHERE m.service IS NOT NULL), '{}')
               AS services,
           round(avg(extract(epoch FROM m.resolved_at - m.opened_at)) FILTER (WHERE m.resolved_at IS NOT NULL))::bigint
               AS mttr,
           coalesce(avg(m.similarity), 0) AS confidence
    FROM pattern_members m WHERE m.workspace_id = t.workspace_id AND m.pattern_id = t.id
) AS s
WHERE p.workspace_id = t.workspace_id AND p.id = t.id
"""


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    touched: set[tuple[str, str]] = set()
    for _, event in batch:
        workspace = event.workspace_id
        match event:
            case PatternDetected():
                pattern_id = render("pat", event.originator_id)
                await conn.execute(_INSERT_PATTERN, (
                    workspace, pattern_id, event.originator_version, event.name,
                    _json.encode(event.fingerprint).decode(), event.template, event.initial_risk_score,
                    event.initial_confidence, event.initial_confidence, event.occurred_at, event.occurred_at))
            case IssueLinkedToPattern():
                pattern_id = render("pat", event.originator_id)
                await conn.execute(_LINK, (
                    workspace, pattern_id, event.issue_id, event.method, event.similarity, event.fingerprint,
                    event.severity, event.service, event.issue_opened_at, event.occurred_at,
                    event.suggested_pattern_id, event.suggested_similarity, workspace, event.issue_id))
                for other, similarity in event.similar:
                    await conn.execute(_SIMILAR, (workspace, event.issue_id, other, similarity, True))
                    await conn.execute(_SIMILAR, (workspace, other, event.issue_id, similarity, False))
                touched.add((workspace, pattern_id))
                await conn.execute(_TOUCH, (event.originator_version, event.occurred_at, workspace, pattern_id))
            case IssueUnlinkedFromPattern():
                pattern_id = render("pat", event.originator_id)
                await conn.execute(_UNLINK, (workspace, pattern_id, event.issue_id))
                touched.add((workspace, pattern_id))
                await conn.execute(_TOUCH, (event.originator_version, event.occurred_at, workspace, pattern_id))
            case PatternUpdated():
                await _updated(conn, event)
            case PatternMerged():
                await conn.execute(
                    "UPDATE patterns SET merged_into = %s, version = %s, updated_at = %s"
                    " WHERE workspace_id = %s AND id = %s",
                    (event.into_pattern_id, event.originator_version, event.occurred_at, workspace,
                     render("pat", event.originator_id)))
            case IssueStatusChanged() | IssueClosed() | IssueReopened():
                resolved = _resolution(event)
                if resolved is not None:
                    cur = await conn.execute(_RESOLVED, (resolved or None, workspace,
                                                         render("iss", event.originator_id)))
                    touched |= {(workspace, str(row["pattern_id"])) for row in await cur.fetchall()}
            case _:
                pass
    if touched:
        ordered = sorted(touched)
        await conn.execute(_REFRESH, ([w for w, _ in ordered], [p for _, p in ordered]))


def _resolution(event: IssueStatusChanged | IssueClosed | IssueReopened) -> Any:
    """The resolved time to record, `False` to clear it, None for no change."""
    if isinstance(event, IssueReopened):
        return False
    if isinstance(event, IssueClosed):
        return event.occurred_at
    if event.to_status in (Status.RESOLVED, Status.CLOSED):
        return event.occurred_at
    if event.from_status in (Status.RESOLVED, Status.CLOSED):
        return False
    return None


async def _updated(conn: Conn, event: PatternUpdated) -> None:
    sets = ["version = %s", "updated_at = %s"]
    values: list[Any] = [event.originator_version, event.occurred_at]
    if event.name is not msgspec.UNSET:
        sets.append("name = %s")
        values.append(event.name)
    if event.status is not msgspec.UNSET:
        sets.append("status = %s")
        values.append(event.status.value)
    if event.tags is not msgspec.UNSET:
        sets.append("tags = %s")
        values.append(list(event.tags))
    if event.template is not msgspec.UNSET:
        sets.append("template = %s")
        values.append(event.template)
    values += [event.workspace_id, render("pat", event.originator_id)]
    await conn.execute(f"UPDATE patterns SET {', '.join(sets)} WHERE workspace_id = %s AND id = %s", values)
