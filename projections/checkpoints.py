"""Projection checkpoints: the last event-store position each read model has committed."""

from __future__ import annotations

from psycopg import AsyncConnection


def channel(schema: str) -> str:
    """LISTEN/NOTIFY channel on which checkpoint advances are announced (one per deployment schema)."""
    return f"{schema}_checkpoints"


def standing_channel(schema: str) -> str:
    """LISTEN/NOTIFY channel on which the read models behind a caller's standing (identity, sessions, workspace
    settings, credentials) announce the workspaces whose rows they changed; `*` means any workspace."""
    return f"{schema}_standing"


STANDING_PAYLOAD_MAX = 7_000
"""NOTIFY payloads stop at 8,000 bytes: past this many, the announcement is `*` (every workspace)."""


async def announce_standing(conn: AsyncConnection[dict[str, object]], schema: str, workspaces: set[str]) -> None:
    """Say, when the transaction commits, that these workspaces' standing rows changed (API processes drop what
    they cached of them)."""
    payload = ",".join(sorted(workspaces))
    await conn.execute("SELECT pg_notify(%s, %s)", (standing_channel(schema),
                                                      payload if len(payload) <= STANDING_PAYLOAD_MAX else "*"))


async def lock_many(conn: AsyncConnection[dict[str, object]], names: list[str]) -> dict[str, int]:
    """Each read model's position, all locked for this transaction in name order (one order, no deadlock).
    A read model's row is created on its first lock; after that, locking is one statement."""
    ordered = sorted(names)
    held = await _select_for_update(conn, ordered)
    if len(held) < len(ordered):
        await conn.execute("INSERT INTO projection_checkpoints (name) SELECT unnest(%s::text[])"
                           " ON CONFLICT DO NOTHING", (ordered,))
        held = await _select_for_update(conn, ordered)
    return held


async def _select_for_update(conn: AsyncConnection[dict[str, object]], ordered: list[str]) -> dict[str, int]:
    cur = await conn.execute("SELECT name, position FROM projection_checkpoints WHERE name = ANY(%s)"
                             " ORDER BY name FOR UPDATE", (ordered,))
    return {str(row["name"]): int(str(row["position"])) for row in await cur.fetchall()}


async def advance_many(conn: AsyncConnection[dict[str, object]], schema: str, positions: dict[str, int],
                       stream_seq: int) -> None:
    """Move each forward (never back) and announce where each now stands when the transaction commits, in one
    statement."""
    names = list(positions)
    values = [positions[name] for name in names]
    await conn.execute(
        "WITH moved AS (UPDATE projection_checkpoints AS c SET position = GREATEST(c.position, m.position),"
        " stream_seq = GREATEST(c.stream_seq, %s), updated_at = now()"
        " FROM unnest(%s::text[], %s::bigint[]) AS m(name, position) WHERE c.name = m.name"
        " RETURNING c.name, c.position)"
        " SELECT pg_notify(%s, moved.name || ':' || moved.position) FROM moved",
        (stream_seq, names, values, channel(schema)))


async def lock(conn: AsyncConnection[dict[str, object]], name: str) -> int:
    """One read model's position, locked for this transaction: one writer per read model at a time."""
    return (await lock_many(conn, [name]))[name]


async def advance(conn: AsyncConnection[dict[str, object]], schema: str, name: str, position: int,
                  stream_seq: int) -> None:
    """Move forward (never back) and announce it when the transaction commits."""
    await advance_many(conn, schema, {name: position}, stream_seq)


async def read(conn: AsyncConnection[dict[str, object]], name: str) -> tuple[int, int]:
    """(position, stream_seq) without locking; (0, 0) before the first advance."""
    cur = await conn.execute("SELECT position, stream_seq FROM projection_checkpoints WHERE name = %s", (name,))
    row = await cur.fetchone()
    return (0, 0) if row is None else (int(str(row["position"])), int(str(row["stream_seq"])))


async def position(conn: AsyncConnection[dict[str, object]], name: str) -> int:
    return (await read(conn, name))[0]
