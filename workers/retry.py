"""`causeloop projections retry NAME`: re-apply a read model's parked events, each on its own, and say what became of
each."""

from __future__ import annotations

import asyncio

import psycopg

from adapters import codec
from adapters.event_store import read_log
from adapters.postgres import WRITER_ROLE, AsyncConn, connect
from adapters.settings import Settings
from projections import checkpoints, dead_letters
from projections.registry import RETRIABLE, Projection


def retry_parked(settings: Settings, name: str, *, discard_foreign: bool = False) -> tuple[str, int]:
    """Re-apply each parked event of `name`, read again from the event store by its position (the source of
    truth), in position order; one line per message, then a summary. Foreign messages (not this store's events)
    are never applied: listed, or forgotten with `discard_foreign` once the stream is put right. Returns the
    report and how many messages are still parked."""
    return asyncio.run(_retry_parked(settings, RETRIABLE[name], discard_foreign))


async def _retry_parked(settings: Settings, projection: Projection, discard_foreign: bool) -> tuple[str, int]:
    lines: list[str] = []
    applied = still = 0
    conn = await connect(settings)
    async with conn:
        parked = await dead_letters.parked(conn, projection.name)
        await conn.commit()
        for message in parked:
            if message.foreign_reason is not None:
                lines.append(_foreign(message, discard_foreign))
                if not discard_foreign:
                    still += 1
                continue
            error = await _retry_one(conn, projection, message)
            if error is None:
                applied += 1
                lines.append(f"position {message.position}: applied")
                continue
            still += 1
            lines.append(f"position {message.position}: still parked: {error}")
            async with conn.transaction():
                await dead_letters.failed_again(conn, message.id, error)
        if discard_foreign:
            async with conn.transaction():
                await dead_letters.forget_foreign(conn, projection.name)
    lines.append(f"retried {len(parked)} parked messages of {projection.name}: {applied} applied, "
                 f"{still} still parked" + (f", {len(parked) - applied - still} foreign discarded"
                                            if discard_foreign else ""))
    return "\n".join(lines), still


def _foreign(message: dead_letters.Parked, discarded: bool) -> str:
    what = f"stream message {message.stream_seq}: {message.foreign_reason}, not an event of this store"
    if discarded:
        return f"{what}: discarded"
    return (f"{what}: not retried (once the stream is put right, `--discard-foreign` forgets it; "
            "`causeloop relay reset-stream` does too)")


async def _retry_one(conn: AsyncConn, projection: Projection, message: dead_letters.Parked) -> str | None:
    """None once applied (and marked so), else why not. Under the read model's checkpoint lock: the live projector
    waits meanwhile. A database outage is raised: it says nothing about the message."""
    try:
        async with conn.transaction():
            await checkpoints.lock(conn, projection.name)
            stored = await read_log(conn, message.position - 1, 1)
            if not stored or stored[0][0] != message.position:
                return f"no event at position {message.position} in the event store"
            event = codec.decode(stored[0][1])
            await conn.execute(f"SET LOCAL role {WRITER_ROLE}")
            await projection.project(conn, [(message.position, event)])
            await conn.execute("RESET role")
            await dead_letters.applied(conn, message.id)
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise
    except Exception as exc:
        return repr(exc)
    return None
