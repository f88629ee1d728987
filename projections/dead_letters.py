"""Parked messages: events a read model could not apply, kept with their error for the operator (status, retry).

The live projector, a rebuild and a retry all park the same way, so `causeloop projections status` and `retry`
see one list per read model whoever parked them. A message that is not an event of this store (another store's,
one without a store id, one beyond the store's head) is parked too, marked with why (`foreign_reason`): it is
never applied, and it shows until the stream is put right (`causeloop relay reset-stream`).
"""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg import AsyncConnection

Conn = AsyncConnection[dict[str, Any]]
ERROR_CHARS = 2000


class Unapplied(msgspec.Struct, frozen=True, kw_only=True):
    """An event a read model could not apply: where it was found, what it was, and why it failed."""

    position: int
    payload: bytes
    error: str
    subject: str = ""
    stream_seq: int = 0
    """0 when it did not come from the bus (a rebuild reads the event store)."""
    deliveries: int = 1
    foreign_reason: str | None = None
    """Why the message is not an event of this store (then `position` means nothing here); None when it is."""


class Parked(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    position: int
    stream_seq: int
    error: str
    foreign_reason: str | None


async def park(conn: Conn, projection: str, unapplied: Unapplied) -> None:
    """Inside the caller's transaction (which moves the read model's checkpoint past an event of this store, never
    past a foreign message); parking twice is a no-op: an event is keyed by its position, a foreign message by its
    stream sequence."""
    await conn.execute(
        "INSERT INTO dead_letters (projection, position, stream_seq, subject, payload, error, deliveries,"
        " foreign_reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (projection, unapplied.position, unapplied.stream_seq, unapplied.subject, unapplied.payload,
         unapplied.error[:ERROR_CHARS], unapplied.deliveries, unapplied.foreign_reason))


async def parked(conn: Conn, projection: str) -> list[Parked]:
    """The read model's messages still parked: its own events in position order, then the foreign messages."""
    cur = await conn.execute("SELECT id, position, stream_seq, error, foreign_reason FROM dead_letters"
                             " WHERE projection = %s AND retried_at IS NULL"
                             " ORDER BY foreign_reason IS NOT NULL, position, stream_seq", (projection,))
    return [msgspec.convert(row, Parked) for row in await cur.fetchall()]


async def positions_in_workspace(conn: Conn, projection: str, workspace_id: str, limit: int) -> list[int]:
    """Positions still parked for `projection` that may be `workspace_id`'s events: its subject's second token is
    the workspace (`codec.subject_for`), and an event whose subject is unknown (undecodable) may be anyone's."""
    cur = await conn.execute(
        "SELECT position FROM dead_letters WHERE projection = %s AND retried_at IS NULL AND foreign_reason IS NULL"
        " AND (split_part(subject, '.', 2) = %s OR subject = '') ORDER BY position LIMIT %s",
        (projection, workspace_id, limit))
    return [int(row["position"]) for row in await cur.fetchall()]


async def count(conn: Conn, projection: str) -> tuple[int, int]:
    """(messages still parked, of which not this store's events)."""
    cur = await conn.execute("SELECT count(*) AS n, count(foreign_reason) AS foreign FROM dead_letters"
                             " WHERE projection = %s AND retried_at IS NULL", (projection,))
    row = await cur.fetchone() or {"n": 0, "foreign": 0}
    return int(row["n"]), int(row["foreign"])


async def applied(conn: Conn, parked_id: int) -> None:
    """A parked message that has now been applied stays listed, as retried."""
    await conn.execute("UPDATE dead_letters SET retried_at = now() WHERE id = %s", (parked_id,))


async def failed_again(conn: Conn, parked_id: int, error: str) -> None:
    await conn.execute("UPDATE dead_letters SET error = %s, deliveries = deliveries + 1 WHERE id = %s",
                       (error[:ERROR_CHARS], parked_id))


async def take_over(conn: Conn, projection: str, rebuilt_as: str) -> int:
    """At a rebuild's switch: the rebuilt tables replayed every event, so what the rebuild parked (as `rebuilt_as`)
    replaces whatever of the store's events was parked for the old tables. Returns how many the rebuild parked."""
    await conn.execute("DELETE FROM dead_letters WHERE projection = %s AND foreign_reason IS NULL", (projection,))
    cur = await conn.execute("UPDATE dead_letters SET projection = %s WHERE projection = %s",
                             (projection, rebuilt_as))
    return cur.rowcount


async def forget_foreign(conn: Conn, projection: str | None = None) -> int:
    """Once the stream is put right (`relay reset-stream`, `projections retry --discard-foreign`), the foreign
    messages parked from it (for `projection`, or for every read model) go; returns how many."""
    cur = await conn.execute("DELETE FROM dead_letters WHERE foreign_reason IS NOT NULL"
                             " AND (%s::text IS NULL OR projection = %s)", (projection, projection))
    return cur.rowcount
