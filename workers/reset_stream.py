"""`causeloop relay reset-stream`: give the relay an empty stream again, and republish this store's events into it.

What the relay refuses (a stream ahead of a restored database, or one holding messages without a store id) is
put right by deleting the stream, creating it again and moving the relay back to position 0. Deleting rather than
purging also clears JetStream's duplicate window, which would otherwise drop the republished events. Projectors
notice the new stream (`ProjectorRunner._resume_after`) and replay it; their positions filter what they have.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.js.errors import NotFoundError

from adapters.event_store import read_head, store_id
from adapters.nats import connect as nats_connect
from adapters.nats import ensure_stream
from adapters.settings import Settings
from projections import dead_letters
from workers import leadership, stream_guard
from workers.relay import RELAY_NAME


class ResetRefused(Exception):
    """The stream is left as it is; the message says why."""


def reset_stream(settings: Settings, *, including_other_stores: bool = False, wait_s: float = 30.0) -> str:
    return asyncio.run(_reset(settings, including_other_stores, wait_s))


async def _reset(settings: Settings, including_other_stores: bool, wait_s: float) -> str:
    """Holds the relay's leadership throughout, so no relay publishes meanwhile. A relay that refuses its stream
    lets go of it between checks; a relay that publishes keeps it, and then nothing is reset."""
    stopping = asyncio.Event()
    timer = asyncio.get_running_loop().call_later(wait_s, stopping.set)
    conn = await leadership.acquire(settings, RELAY_NAME, stopping, retry_s=0.2)
    timer.cancel()
    if conn is None:
        raise ResetRefused(f"a relay has led for {wait_s:g}s, publishing into NATS stream {settings.nats_stream}: "
                           "it accepts the stream, so there is nothing to reset (stop the relays to reset anyway)")
    try:
        store = await store_id(conn)
        deleted = await _recreate(settings, store, including_other_stores)
        async with conn.transaction():
            await conn.execute("UPDATE relay_checkpoint SET position = 0, refused = NULL, updated_at = now()"
                               " WHERE name = %s", (RELAY_NAME,))
            cleared = await dead_letters.forget_foreign(conn)
        head = await read_head(conn)
    finally:
        await conn.close()
    return (f"NATS stream {settings.nats_stream}: deleted with its {deleted} messages and created again; the relay "
            f"republishes this store's events (positions 1 to {head}, store id {store}); cleared {cleared} foreign "
            "parked messages")


async def _recreate(settings: Settings, store: str, including_other_stores: bool) -> int:
    """Delete the stream (unless it holds another store's messages and that was not asked for) and create it
    again; returns how many messages went with it."""
    nc = await nats_connect(settings, name="causeloop-reset-stream")
    try:
        js = nc.jetstream()
        deleted = 0
        with contextlib.suppress(NotFoundError):  # no stream: nothing to delete
            others = {owner for owner in map(stream_guard.owner, await stream_guard.ends(js, settings.nats_stream))
                      if owner not in (store, None)}
            if others and not including_other_stores:
                raise ResetRefused(
                    f"NATS stream {settings.nats_stream} holds messages of event store {', '.join(sorted(others))}: "
                    "another deployment's stream, whose events this would delete. Give this deployment a stream of "
                    "its own (set NATS_STREAM and SUBJECT_PREFIX to new names) instead; if that deployment is gone "
                    "for good, pass --including-other-stores")
            deleted = (await js.stream_info(settings.nats_stream)).state.messages
            await js.delete_stream(settings.nats_stream)
        await ensure_stream(js, settings)
        return deleted
    finally:
        await nc.close()

