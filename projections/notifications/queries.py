"""Reads of a user's notification feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

Conn = AsyncConnection[dict[str, Any]]


class NotificationView(msgspec.Struct, kw_only=True):
    id: str
    type: str
    title: str
    read: bool
    entity_type: str | None
    entity_id: str | None
    created_at: datetime


async def feed(conn: Conn, workspace_id: str, user_id: str, *, unread: bool, limit: int, before: int | None
               ) -> tuple[list[tuple[int, NotificationView]], int]:
    """Newest first; `before` is the position after which the previous page ended (keyset)."""
    cur = await conn.execute(
        "SELECT position, id, type, title, read, entity_type, entity_id, created_at FROM notifications"
        " WHERE workspace_id = %s AND user_id = %s AND NOT dismissed AND (NOT %s OR NOT read)"
        " AND (%s::bigint IS NULL OR position < %s::bigint) ORDER BY position DESC, id LIMIT %s",
        (workspace_id, user_id, unread, before, before, limit))
    rows = await cur.fetchall()
    counted = await conn.execute(
        "SELECT count(*) AS n FROM notifications WHERE workspace_id = %s AND user_id = %s AND NOT dismissed"
        " AND (NOT %s OR NOT read)", (workspace_id, user_id, unread))
    total = await counted.fetchone()
    return ([(int(r["position"]), msgspec.convert({k: v for k, v in r.items() if k != "position"}, NotificationView))
             for r in rows], int(total["n"]) if total else 0)


async def exists(conn: Conn, workspace_id: str, user_id: str, notification_id: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM notifications WHERE workspace_id = %s AND user_id = %s AND id = %s"
                             " AND NOT dismissed", (workspace_id, user_id, notification_id))
    return await cur.fetchone() is not None


async def unread_count(conn: Conn, workspace_id: str, user_id: str, type_prefix: str | None = None) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM notifications WHERE workspace_id = %s AND user_id = %s AND NOT read"
        " AND NOT dismissed AND (%s::text IS NULL OR starts_with(type, %s::text))",
        (workspace_id, user_id, type_prefix, type_prefix))
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


class StoredPreferences(msgspec.Struct, kw_only=True):
    """A user's preferences as last set (secrets only as their hints: the ciphertexts stay in the table)."""

    email: bool
    slack_hint: str | None
    teams_hint: str | None
    pagerduty_hint: str | None
    min_severity: str
    min_risk_score: int
    digest: str
    events: dict[str, dict[str, bool]]
    updated_at: datetime


async def preferences(conn: Conn, workspace_id: str, user_id: str) -> StoredPreferences | None:
    """None when the user never set any (the defaults apply)."""
    cur = await conn.execute(
        "SELECT email, slack_hint, teams_hint, pagerduty_hint, min_severity, min_risk_score, digest, events,"
        " updated_at FROM notification_preferences WHERE workspace_id = %s AND user_id = %s", (workspace_id, user_id))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, StoredPreferences)


class WatchedPattern(msgspec.Struct, kw_only=True):
    pattern_id: str
    name: str | None
    watched_since: datetime


async def watched_patterns(conn: Conn, workspace_id: str, user_id: str, *, limit: int, offset: int
                           ) -> tuple[list[WatchedPattern], int]:
    """The patterns the user watches, most recently watched first."""
    cur = await conn.execute(
        "SELECT w.pattern_id, n.name, w.since AS watched_since FROM pattern_watchers w"
        " LEFT JOIN notification_patterns n ON n.workspace_id = w.workspace_id AND n.pattern_id = w.pattern_id"
        " WHERE w.workspace_id = %s AND w.user_id = %s ORDER BY w.position DESC, w.pattern_id LIMIT %s OFFSET %s",
        (workspace_id, user_id, limit, offset))
    rows = [msgspec.convert(row, WatchedPattern) for row in await cur.fetchall()]
    counted = await conn.execute("SELECT count(*) AS n FROM pattern_watchers WHERE workspace_id = %s AND user_id = %s",
                                 (workspace_id, user_id))
    total = await counted.fetchone()
    return rows, int(total["n"]) if total else 0
