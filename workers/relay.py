"""The relay: publishes the event store's log, in order, to JetStream; its checkpoint moves only after PubAck."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import psycopg
from nats.js import JetStreamContext

from adapters import codec
from adapters.event_store import EVENTS_TABLE, read_log, store_id
from adapters.nats import connect as nats_connect
from adapters.nats import ensure_stream, headers_for
from adapters.postgres import AsyncConn, listen_forever
from adapters.settings import Settings
from workers import leadership, stream_guard
from workers.stream_guard import StreamRefused

log = logging.getLogger(__name__)

RELAY_NAME = "relay"
PAGE = 1000
IDLE_WAIT_S = 0.5
REFUSED_RETRY_S = 10.0
"""After refusing its stream, the relay lets go of the leadership (so `relay reset-stream` can take it) and checks
again this much later."""


async def read_checkpoint(conn: AsyncConn) -> int:
    await conn.execute("INSERT INTO relay_checkpoint (name) VALUES (%s) ON CONFLICT DO NOTHING", (RELAY_NAME,))
    cur = await conn.execute("SELECT position FROM relay_checkpoint WHERE name = %s", (RELAY_NAME,))
    row = await cur.fetchone()
    return 0 if row is None else int(str(row["position"]))


async def write_checkpoint(conn: AsyncConn, position: int) -> None:
    await conn.execute("UPDATE relay_checkpoint SET position = %s, updated_at = now() WHERE name = %s",
                       (position, RELAY_NAME))


async def write_refusal(conn: AsyncConn, refusal: str | None) -> None:
    """Why the relay refuses its stream (None: it does not), for `relay status` and /metrics."""
    await conn.execute("INSERT INTO relay_checkpoint (name, refused) VALUES (%s, %s)"
                       " ON CONFLICT (name) DO UPDATE SET refused = excluded.refused", (RELAY_NAME, refusal))


async def publish(js: JetStreamContext, settings: Settings, store: str, page: Sequence[tuple[int, bytes]]) -> None:
    """Pipelined publishes, each stamped with the store's id; returns only once every one is acknowledged (or
    raises)."""
    acks = []
    for position, state in page:
        event = codec.decode(state)
        acks.append(await js.publish_async(codec.subject_for(settings.subject_prefix, event),
                                           codec.encode_public(event, position),
                                           headers=headers_for(event, position, store)))
    await asyncio.gather(*acks)


async def relay_once(js: JetStreamContext, settings: Settings, conn: AsyncConn, store: str,
                     position: int) -> list[int]:
    """Publish one page after `position` and checkpoint it; returns the page's positions (empty when idle).

    The page is read on `conn`, the leadership session, so every read also proves the lock is still held: a lost
    session fails the read instead of letting a deposed leader publish. The position lives in memory for the term:
    only the leader writes the checkpoint, and each term starts by reading it.
    """
    page = await read_log(conn, position, PAGE)
    if page:
        await publish(js, settings, store, page)
        await write_checkpoint(conn, page[-1][0])
    return [relayed for relayed, _ in page]


async def run_relay(settings: Settings, stopping: asyncio.Event) -> None:
    """Stand by until elected, then relay until `stopping`; a lost lock session ends the term."""
    while not stopping.is_set():
        conn = await leadership.acquire(settings, RELAY_NAME, stopping)
        if conn is None:
            return
        pause = 1.0
        try:
            await _lead(settings, stopping, conn)
        except StreamRefused as refusal:
            log.error("relay refuses to publish: %s", refusal)
            pause = REFUSED_RETRY_S
        except Exception:
            log.exception("relay failed; re-electing")
        else:
            continue
        finally:
            await conn.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), pause)


async def _lead(settings: Settings, stopping: asyncio.Event, conn: AsyncConn) -> None:
    nc = await nats_connect(settings, name="causeloop-relay")
    wake = asyncio.Event()
    # The event store NOTIFYs on each commit; on a lost listener the relay polls (wakes) rather than stalls.
    listener = asyncio.create_task(listen_forever(settings, {EVENTS_TABLE: lambda _: wake.set()},
                                                  on_lost=wake.set))
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings)
        # The checkpoint only saves republishing: one lost in a crash is re-sent and JetStream's Nats-Msg-Id
        # dedupe (and the projectors' positions) absorb it, so its commits need not wait for the WAL flush.
        await conn.execute("SET synchronous_commit TO off")
        store = await store_id(conn)
        try:
            await stream_guard.check(js, settings, conn, store)
        except StreamRefused as refusal:
            await write_refusal(conn, str(refusal))
            raise
        await write_refusal(conn, None)
        position = await read_checkpoint(conn)
        while not stopping.is_set():
            wake.clear()  # before reading: a commit after this point sets it again, so none is missed
            try:
                relayed = await relay_once(js, settings, conn, store, position)
            except psycopg.OperationalError as exc:
                log.warning("relay lost its leadership session: %s", exc)
                return
            if relayed:
                position = relayed[-1]
            if len(relayed) == PAGE:
                continue  # more may be waiting: no need for a NOTIFY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), IDLE_WAIT_S)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await nc.drain()
