"""Operational status of the pipeline: event-store head, relay and projection checkpoints, lag, parked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters.codec import EVENT_TYPES
from adapters.event_store import EVENTS_TABLE, read_head
from projections import dead_letters
from projections.registry import RETRIABLE

TRACKED: dict[str, tuple[int, frozenset[str]]] = {p.name: (p.version, p.categories) for p in RETRIABLE.values()}
"""Every checkpointed consumer: the read models, then the webhook delivery worker's decisions (not a read model:
never rebuilt, but its lag and parked messages are watched the same way)."""


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: int
    position: int
    lag_events: int
    lag_seconds: float
    parked: int
    foreign: int
    """Of the parked messages, those that are not this store's events (the stream holds another store's)."""
    updated_at: datetime | None


class PipelineStatus(msgspec.Struct, frozen=True, kw_only=True):
    head: int
    relay_position: int
    relay_lag_events: int
    relay_refused: str | None
    """Why the relay refuses to publish into its stream, and what resolves it; None when it does not."""
    projections: list[ProjectionStatus]


async def pipeline_status(conn: AsyncConnection[dict[str, Any]]) -> PipelineStatus:
    """Lag in events counts stored events past the checkpoint; lag in seconds is the oldest of them's age."""
    head = await read_head(conn)
    cur = await conn.execute("SELECT position, refused FROM relay_checkpoint WHERE name = 'relay'")
    row = await cur.fetchone()
    relay = int(row["position"]) if row else 0
    statuses = [await _projection(conn, name, head) for name in TRACKED]
    return PipelineStatus(head=head, relay_position=relay, relay_lag_events=await _count_after(conn, relay),
                          relay_refused=row["refused"] if row else None, projections=statuses)


async def _projection(conn: AsyncConnection[dict[str, Any]], name: str, head: int) -> ProjectionStatus:
    """Lag counts only the events this read model consumes: other categories never move its checkpoint."""
    version, categories = TRACKED[name]
    topics = [type_name for type_name, cls in EVENT_TYPES.items() if cls.category in categories]
    cur = await conn.execute("SELECT position, updated_at FROM projection_checkpoints WHERE name = %s", (name,))
    row = await cur.fetchone()
    position = int(row["position"]) if row else 0
    parked, foreign = await dead_letters.count(conn, name)
    lag_seconds = 0.0
    if position < head and topics:
        cur = await conn.execute(
            f"SELECT extract(epoch FROM now() - (convert_from(state, 'UTF8')::jsonb->>'occurred_at')::timestamptz)"
            f" AS age FROM {EVENTS_TABLE} WHERE notification_id > %s AND topic = ANY(%s)"
            " ORDER BY notification_id LIMIT 1", (position, topics))
        age = await cur.fetchone()
        lag_seconds = float(age["age"]) if age and age["age"] is not None else 0.0
    return ProjectionStatus(name=name, version=version, position=position,
                            lag_events=await _count_after(conn, position, topics), lag_seconds=max(lag_seconds, 0.0),
                            parked=parked, foreign=foreign, updated_at=row["updated_at"] if row else None)


async def _count_after(conn: AsyncConnection[dict[str, Any]], position: int, topics: list[str] | None = None) -> int:
    if topics is not None:
        cur = await conn.execute(f"SELECT count(*) AS n FROM {EVENTS_TABLE} WHERE notification_id > %s"
                                 " AND topic = ANY(%s)", (position, topics))
        return int((await cur.fetchone() or {"n": 0})["n"])
    cur = await conn.execute(f"SELECT count(*) AS n FROM {EVENTS_TABLE} WHERE notification_id > %s", (position,))
    return int((await cur.fetchone() or {"n": 0})["n"])


def prometheus_text(status: PipelineStatus) -> str:
    lines = [
        "# HELP causeloop_event_store_head_position Highest position in the event store.",
        "# TYPE causeloop_event_store_head_position gauge",
        f"causeloop_event_store_head_position {status.head}",
        "# HELP causeloop_relay_position Last position the relay published and had acknowledged.",
        "# TYPE causeloop_relay_position gauge",
        f"causeloop_relay_position {status.relay_position}",
        "# HELP causeloop_relay_lag_events Stored events not yet published.",
        "# TYPE causeloop_relay_lag_events gauge",
        f"causeloop_relay_lag_events {status.relay_lag_events}",
        "# HELP causeloop_relay_refused 1 while the relay refuses to publish into its stream (see relay status).",
        "# TYPE causeloop_relay_refused gauge",
        f"causeloop_relay_refused {int(status.relay_refused is not None)}",
        "# HELP causeloop_projection_position Checkpoint of each read model.",
        "# TYPE causeloop_projection_position gauge",
        *(f'causeloop_projection_position{{projection="{p.name}"}} {p.position}' for p in status.projections),
        "# HELP causeloop_projection_lag_events Stored events a read model has not yet applied.",
        "# TYPE causeloop_projection_lag_events gauge",
        *(f'causeloop_projection_lag_events{{projection="{p.name}"}} {p.lag_events}' for p in status.projections),
        "# HELP causeloop_projection_lag_seconds Age of the oldest event a read model has not yet applied.",
        "# TYPE causeloop_projection_lag_seconds gauge",
        *(f'causeloop_projection_lag_seconds{{projection="{p.name}"}} {p.lag_seconds:.3f}'
          for p in status.projections),
        "# HELP causeloop_projection_parked_messages Messages parked in the dead-letter table (alert when > 0).",
        "# TYPE causeloop_projection_parked_messages gauge",
        *(f'causeloop_projection_parked_messages{{projection="{p.name}"}} {p.parked}' for p in status.projections),
        "# HELP causeloop_projection_foreign_messages Parked messages that are not this event store's events: the"
        " stream holds another store's (alert when > 0).",
        "# TYPE causeloop_projection_foreign_messages gauge",
        *(f'causeloop_projection_foreign_messages{{projection="{p.name}"}} {p.foreign}' for p in status.projections),
    ]
    return "\n".join(lines) + "\n"
