"""The notification projection's folds beside the feed: pattern names (for titles), who watches which pattern, and
each user's preferences (the muted types and severity floor the feed's insert reads)."""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg import AsyncConnection

from domain.ids import render
from domain.notifications.events import NotificationPreferencesSet, PatternUnwatched, PatternWatched
from domain.notifications.preferences import Preferences, muted_types, project_preferences, severity_floor
from domain.patterns.events import PatternDetected, PatternMerged, PatternUpdated

Conn = AsyncConnection[dict[str, Any]]
TITLE_MAX = 300
_json = msgspec.json.Encoder()

_NAME = """
INSERT INTO notification_patterns (workspace_id, pattern_id, name) VALUES (%s, %s, %s)
ON CONFLICT (workspace_id, pattern_id) DO UPDATE SET name = excluded.name
"""
_WATCH = """
INSERT INTO pattern_watchers (workspace_id, pattern_id, user_id, since, position) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""
_UNWATCH = "DELETE FROM pattern_watchers WHERE workspace_id = %s AND pattern_id = %s AND user_id = %s"
_PREFERENCES = """
INSERT INTO notification_preferences (workspace_id, user_id, email, slack_ciphertext, slack_hint, teams_ciphertext,
    teams_hint, pagerduty_ciphertext, pagerduty_hint, min_severity, severity_floor, min_risk_score, digest, events,
    muted, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)
ON CONFLICT (workspace_id, user_id) DO UPDATE SET email = excluded.email,
    slack_ciphertext = excluded.slack_ciphertext, slack_hint = excluded.slack_hint,
    teams_ciphertext = excluded.teams_ciphertext, teams_hint = excluded.teams_hint,
    pagerduty_ciphertext = excluded.pagerduty_ciphertext, pagerduty_hint = excluded.pagerduty_hint,
    min_severity = excluded.min_severity, severity_floor = excluded.severity_floor,
    min_risk_score = excluded.min_risk_score, digest = excluded.digest, events = excluded.events,
    muted = excluded.muted, updated_at = excluded.updated_at
"""


async def pattern_changed(conn: Conn, event: PatternDetected | PatternUpdated | PatternMerged) -> str | None:
    """The `pattern.updated` title for this change, or None when watchers do not hear of it: a new pattern, or only
    its template refined by the detector as issues join. Keeps the pattern's name for later titles."""
    workspace, pattern_id = event.workspace_id, render("pat", event.originator_id)
    match event:
        case PatternDetected():
            await conn.execute(_NAME, (workspace, pattern_id, event.name))
            return None
        case PatternMerged():
            name = await _name(conn, workspace, pattern_id)
            return _title(name, [f"merged into {event.into_pattern_id}"])
        case PatternUpdated():
            if event.name is msgspec.UNSET and event.status is msgspec.UNSET and event.tags is msgspec.UNSET:
                return None
            name = await _name(conn, workspace, pattern_id)
            changes = []
            if event.name is not msgspec.UNSET:
                changes.append(f"renamed (was “{name}”)")
                name = event.name
                await conn.execute(_NAME, (workspace, pattern_id, name))
            if event.status is not msgspec.UNSET:
                changes.append(f"now {event.status.value}")
            if event.tags is not msgspec.UNSET:
                changes.append("tags changed")
            return _title(name, changes)


def _title(name: str, changes: list[str]) -> str:
    return f"Pattern “{name[:200]}”: {', '.join(changes)}"[:TITLE_MAX]


async def _name(conn: Conn, workspace_id: str, pattern_id: str) -> str:
    cur = await conn.execute("SELECT name FROM notification_patterns WHERE workspace_id = %s AND pattern_id = %s",
                             (workspace_id, pattern_id))
    row = await cur.fetchone()
    return str(row["name"]) if row else pattern_id


async def apply(conn: Conn, event: PatternWatched | PatternUnwatched | NotificationPreferencesSet,
                position: int) -> None:
    workspace = event.workspace_id
    match event:
        case PatternWatched():
            await conn.execute(_WATCH, (workspace, event.pattern_id, event.user_id, event.occurred_at, position))
        case PatternUnwatched():
            await conn.execute(_UNWATCH, (workspace, event.pattern_id, event.user_id))
        case NotificationPreferencesSet():
            kept: Preferences = project_preferences([event])
            await conn.execute(_PREFERENCES, (
                workspace, event.user_id, kept.email, event.slack_webhook_ciphertext, event.slack_webhook_hint,
                event.teams_webhook_ciphertext, event.teams_webhook_hint, event.pagerduty_key_ciphertext,
                event.pagerduty_key_hint, kept.min_severity, severity_floor(kept.min_severity), kept.min_risk_score,
                kept.digest, _json.encode(dict(sorted(kept.events.items()))).decode(), muted_types(kept),
                event.occurred_at))
