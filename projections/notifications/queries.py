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
