"""Writes each user's notification feed from events: an issue created, an alert fired, a fix recommended (and,
through NOTIFY_ON, any event another feature registers), addressed to the workspace's active members; a watched
pattern updated, addressed to its watchers who are active members; and the users' reads and dismissals.

Recipients, watchers, pattern names and each user's preferences (types kept out of the feed, the minimum issue
severity) come from events this projection folds itself (not another read model), so a rebuild gives the same
feed. A notification's id is derived from the event and the user, so re-projecting never duplicates it.

In the same statement each notice is queued for the recipient's outside channels (`notification_deliveries`, sent
by workers/channel_delivery.py): unique per notice, user and channel, so an event seen again queues nothing new.

Hook for other features: add an entry to NOTIFY_ON keyed by the event's type name,
mapping the event to (type, title, entity_type, entity_id), and add the event's category to CATEGORIES.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from adapters.ids import event_id
from domain.events import DomainEvent
from domain.identity.events import MemberAdded, MemberReactivated, MemberRemoved, MemberSuspended
from domain.ids import render
from domain.issues.events import IssueOpened
from domain.notifications.events import NotificationPreferencesSet, PatternUnwatched, PatternWatched
from domain.notifications.preferences import ISSUE_SEVERITY_RANK
from domain.patterns.events import PatternDetected, PatternMerged, PatternUpdated
from domain.predictions.events import AlertFired, NotificationDismissed, NotificationRead, NotificationsReadAll
from domain.recommendations.events import RecommendationCreated
from projections.notifications import watching

NAME = "notifications"
VERSION = 4
CATEGORIES = frozenset({"workspace", "issue", "alert_rule", "notification", "recommendation", "pattern",
                        "pattern_watch"})
TABLES = ("notification_recipients", "notifications", "notification_patterns", "pattern_watchers",
          "notification_preferences")

Conn = AsyncConnection[dict[str, Any]]
Notice = tuple[str, str, str | None, str | None]
"""(type, title, entity_type, entity_id)."""


def _issue_created(event: DomainEvent) -> Notice:
    assert isinstance(event, IssueOpened)
    return ("issue.created", f"New {event.severity.value} issue: {event.title}"[:300], "issue",
            render("iss", event.originator_id))


def _alert_fired(event: DomainEvent) -> Notice:
    assert isinstance(event, AlertFired)
    return ("prediction.alert.fired",
            f"{event.pattern_name[:200]}: {round(event.probability * 100)}% within {event.window_days} days "
            f"(threshold {round(event.threshold * 100)}%)", "prediction", event.prediction_id)


def _recommendation_created(event: DomainEvent) -> Notice:
    assert isinstance(event, RecommendationCreated)
    return ("recommendation.created", f"Recommended fix (rank {event.rank}): {event.title}"[:300], "recommendation",
            render("rec", event.originator_id))


NOTIFY_ON: dict[str, Callable[[DomainEvent], Notice]] = {
    "IssueOpened": _issue_created,
    "AlertFired": _alert_fired,
    "RecommendationCreated": _recommendation_created,
}

_NOTIFY = """
WITH n AS (
    SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::bigint[],
                         %s::text[], %s::int[], %s::text[], %s::int[])
        AS n(key, type, title, entity_type, entity_id, created_at, position, workspace_id, severity, watched, risk)
), addressed AS (
    SELECT n.*, r.user_id, notification_ulid(md5(n.key || r.user_id)) AS id
    FROM n JOIN notification_recipients r ON r.workspace_id = n.workspace_id AND r.active
    WHERE n.watched IS NULL OR EXISTS (SELECT 1 FROM pattern_watchers w WHERE w.workspace_id = n.workspace_id
                                       AND w.pattern_id = n.watched AND w.user_id = r.user_id)
), feed AS (
    INSERT INTO notifications (workspace_id, user_id, id, type, title, entity_type, entity_id, created_at, position)
    SELECT a.workspace_id, a.user_id, a.id, a.type, a.title, a.entity_type, a.entity_id, a.created_at, a.position
    FROM addressed a
    LEFT JOIN notification_preferences p ON p.workspace_id = a.workspace_id AND p.user_id = a.user_id
    WHERE NOT a.type = ANY(coalesce(p.muted, '{}'))
      AND (a.severity IS NULL OR a.severity <= coalesce(p.severity_floor, %s))
    ON CONFLICT DO NOTHING
)
INSERT INTO notification_deliveries (workspace_id, user_id, notification_id, channel, type, title, entity_type,
    entity_id, severity, created_at, position, target_ciphertext, digest, batch, next_attempt_at)
SELECT a.workspace_id, a.user_id, a.id, c.channel, a.type, a.title, a.entity_type, a.entity_id, a.severity,
       a.created_at, a.position, c.target, p.digest, b.batch, coalesce(b.batch, a.created_at)
FROM addressed a
JOIN notification_preferences p ON p.workspace_id = a.workspace_id AND p.user_id = a.user_id
CROSS JOIN LATERAL (VALUES ('email', NULL::text, p.email),
                           ('slack', p.slack_ciphertext, p.slack_ciphertext IS NOT NULL),
                           ('teams', p.teams_ciphertext, p.teams_ciphertext IS NOT NULL),
                           ('pagerduty', p.pagerduty_ciphertext, p.pagerduty_ciphertext IS NOT NULL))
    AS c(channel, target, configured)
CROSS JOIN LATERAL (SELECT CASE p.digest
    WHEN 'hourly' THEN date_trunc('hour', a.created_at, 'UTC') + interval '1 hour'
    WHEN 'daily' THEN date_trunc('day', a.created_at, 'UTC') + interval '1 day'
    WHEN 'weekly' THEN date_trunc('week', a.created_at, 'UTC') + interval '1 week' END AS batch) b
WHERE c.configured AND coalesce((p.events -> a.type ->> c.channel)::boolean, false)
  AND (a.severity IS NULL OR a.severity <= p.severity_floor)
  AND (a.risk IS NULL OR a.risk >= p.min_risk_score)
ON CONFLICT DO NOTHING
"""
"""One statement per run of notices: each goes to the feed of every addressed member who keeps its type in the
feed and whose severity floor it meets, and is queued once for each outside channel the member configured and
switched on for its type (severity floor and, for an alert, `min_risk_score` applied), due now or at the end of
the member's digest period (UTC)."""
DEFAULT_SEVERITY_FLOOR = 2
"""p2: what a user who never set preferences gets (critical and high issues)."""
_MEMBER = """
INSERT INTO notification_recipients (workspace_id, user_id, active) VALUES (%s, %s, %s)
ON CONFLICT (workspace_id, user_id) DO UPDATE SET active = excluded.active
"""


def notification_key(event: DomainEvent) -> str:
    """The source event's id: with the user, it names the notification."""
    return str(event_id(event.originator_id, event.originator_version))


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Notices are inserted in one statement per run of them; a membership change or a read flushes the run
    first, so each notice goes to the members of that moment."""
    pending: list[tuple[Any, ...]] = []
    for position, event in batch:
        workspace = event.workspace_id
        notice = NOTIFY_ON.get(type(event).__name__)
        if notice is not None:
            kind, title, entity_type, entity_id = notice(event)
            severity = ISSUE_SEVERITY_RANK.get(event.severity.value) if isinstance(event, IssueOpened) else None
            risk = round(event.probability * 100) if isinstance(event, AlertFired) else None
            pending.append((notification_key(event), kind, title, entity_type, entity_id, event.occurred_at,
                            position, workspace, severity, None, risk))
            continue
        if isinstance(event, (PatternDetected, PatternUpdated, PatternMerged)):
            watched = await watching.pattern_changed(conn, event)
            if watched is not None:
                pending.append((notification_key(event), "pattern.updated", watched, "pattern",
                                render("pat", event.originator_id), event.occurred_at, position, workspace, None,
                                render("pat", event.originator_id), None))
            continue
        if isinstance(event, (MemberAdded, MemberReactivated, MemberSuspended, MemberRemoved, NotificationRead,
                              NotificationDismissed, NotificationsReadAll, PatternWatched, PatternUnwatched,
                              NotificationPreferencesSet)):
            await _flush(conn, pending)
        match event:
            case MemberAdded() | MemberReactivated():
                await conn.execute(_MEMBER, (workspace, event.user_id, True))
            case MemberSuspended() | MemberRemoved():
                await conn.execute(_MEMBER, (workspace, event.user_id, False))
            case NotificationRead():
                await conn.execute("UPDATE notifications SET read = true WHERE workspace_id = %s AND user_id = %s"
                                   " AND id IN (%s, notification_id_now(%s))",
                                   (workspace, event.user_id, event.notification_id, event.notification_id))
            case NotificationDismissed():
                await conn.execute("UPDATE notifications SET dismissed = true, read = true WHERE workspace_id = %s"
                                   " AND user_id = %s AND id IN (%s, notification_id_now(%s))",
                                   (workspace, event.user_id, event.notification_id, event.notification_id))
            case NotificationsReadAll():
                await conn.execute(
                    "UPDATE notifications SET read = true WHERE workspace_id = %s AND user_id = %s AND NOT read"
                    " AND position < %s AND (%s::text IS NULL OR starts_with(type, %s::text))",
                    (workspace, event.user_id, position, event.type_prefix, event.type_prefix))
            case PatternWatched() | PatternUnwatched() | NotificationPreferencesSet():
                await watching.apply(conn, event, position)
            case _:
                pass
    await _flush(conn, pending)


async def _flush(conn: Conn, pending: list[tuple[Any, ...]]) -> None:
    if pending:
        await conn.execute(_NOTIFY, [*(list(column) for column in zip(*pending, strict=True)),
                                     DEFAULT_SEVERITY_FLOOR])
        pending.clear()
