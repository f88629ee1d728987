"""Runs one projection from JetStream: checkpoint + read-model write in one transaction, ack after commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import msgspec
import psycopg
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from psycopg_pool import AsyncConnectionPool

from adapters import codec
from adapters.nats import connect as nats_connect
from adapters.nats import ensure_stream, fetch_batch
from adapters.postgres import AsyncConn, create_pool, writer_transaction
from adapters.settings import Settings
from projections import checkpoints
from projections.registry import PROJECTIONS, Projection
from workers import leadership

log = logging.getLogger(__name__)

BATCH = 500
FETCH_TIMEOUT_S = 1.0
WATCHDOG_IDLE_S = 5.0


class Decoded(msgspec.Struct, frozen=True):
    msg: Msg
    stream_seq: int
    position: int
    event: codec.AnyEvent | None
    error: str | None = None
    skipped: bool = False
    """Another category's event, seen only because the consumer reads every subject: it moves the checkpoint."""


class ProjectorRunner:
    """Consumes in stream order (= event-store order); never trusts consumer state for correctness.

    On every (re)start the durable consumer is recreated to begin right after the stream sequence stored
    with the checkpoint, so messages delivered to a crashed predecessor are seen again in order, and the
    position check in the checkpoint row turns every repeat into a no-op.
    """

    def __init__(self, settings: Settings, projection: Projection, pool: AsyncConnectionPool[AsyncConn],
                 js: JetStreamContext) -> None:
        self.settings = settings
        self.projection = projection
        self.pool = pool
        self.js = js
        self.resubscribe = asyncio.Event()
        self.attempts: dict[int, int] = {}

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        async with self.pool.connection() as conn:
            _, stream_seq = await checkpoints.read(conn, self.projection.name)
            await conn.rollback()
        info = await self.js.stream_info(self.settings.nats_stream)
        if stream_seq > info.state.last_seq:
            stream_seq = 0  # the stream was re-created: replay it all, positions filter what we already have
        config = ConsumerConfig(
            durable_name=self.projection.durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=30, max_deliver=-1,
            max_ack_pending=BATCH * 4, filter_subject=self._filter(),
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if stream_seq > 0 else DeliverPolicy.ALL,
            opt_start_seq=stream_seq + 1 if stream_seq > 0 else None,
        )
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(self.settings.nats_stream, self.projection.durable)
        await self.js.add_consumer(self.settings.nats_stream, config)
        self.resubscribe.clear()
        return await self.js.pull_subscribe_bind(self.projection.durable, stream=self.settings.nats_stream)

    def _filter(self) -> str:
        """One filter subject (nats-server 2.9 has no filter_subjects): the projection's one category, or every
        subject when it reads several — `project` skips the events it does not read, the checkpoint still moves."""
        if len(self.projection.categories) == 1:
            (category,) = self.projection.categories
            return f"{self.settings.subject_prefix}.*.{category}.>"
        return f"{self.settings.subject_prefix}.>"

    async def run(self, stopping: asyncio.Event) -> None:
        sub = await self.subscribe()
        idle = 0.0
        while not stopping.is_set():
            if self.resubscribe.is_set():
                await sub.unsubscribe()
                sub = await self.subscribe()
            messages = await fetch_batch(sub, BATCH, FETCH_TIMEOUT_S)
            if messages:
                idle = 0.0
                await self.handle(messages)
                continue
            idle += FETCH_TIMEOUT_S
            if idle >= WATCHDOG_IDLE_S:
                idle = 0.0
                if await self._stalled():
                    log.warning("%s: consumer stalled behind the stream; resubscribing", self.projection.name)
                    self.resubscribe.set()
        await sub.unsubscribe()

    async def _stalled(self) -> bool:
        """Fetches keep coming back empty although the consumer has messages waiting (or is gone)."""
        try:
            consumer = await self.js.consumer_info(self.settings.nats_stream, self.projection.durable)
        except NotFoundError:
            return True
        return bool(consumer.num_pending)

    async def handle(self, messages: Sequence[Msg]) -> None:
        decoded = [_decode(msg, self.projection.categories) for msg in messages]
        try:
            await self.commit(decoded)
        except Exception:
            log.exception("%s: batch failed; isolating", self.projection.name)
            for item in decoded:
                await self._commit_alone(item)
        for msg in messages:
            await msg.ack()

    async def _commit_alone(self, item: Decoded) -> None:
        """Retry one message; after N failures park it (with the checkpoint move) instead of blocking forever."""
        while True:
            try:
                await self.commit([item])
                return
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the database is away: that is no fault of the message, so restart instead of parking
            except Exception as exc:
                attempts = self.attempts.get(item.position, 0) + 1
                self.attempts[item.position] = attempts
                if attempts >= self.settings.projector_max_deliveries:
                    await self.park(item, repr(exc), attempts)
                    return
                await asyncio.sleep(0.05 * 2 ** attempts)

    async def commit(self, batch: Sequence[Decoded]) -> None:
        async with writer_transaction(self.pool) as conn:
            position, _ = await checkpoints.lock(conn, self.projection.name)
            fresh: list[tuple[int, codec.AnyEvent]] = []
            for item in batch:
                if item.position <= position:
                    continue
                if item.skipped:
                    position = item.position
                    continue
                if item.event is None:
                    raise ValueError(item.error or "undecodable message")
                fresh.append((item.position, item.event))
                position = item.position
            await self.projection.project(conn, fresh)
            await checkpoints.advance(conn, self.settings.database_schema, self.projection.name, position,
                                      max(item.stream_seq for item in batch))
        for item in batch:
            self.attempts.pop(item.position, None)

    async def park(self, item: Decoded, error: str, attempts: int) -> None:
        async with writer_transaction(self.pool) as conn:
            position, _ = await checkpoints.lock(conn, self.projection.name)
            if item.position > position:
                await conn.execute(
                    "INSERT INTO dead_letters (projection, position, stream_seq, subject, payload, error, deliveries)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (projection, position) DO NOTHING",
                    (self.projection.name, item.position, item.stream_seq, item.msg.subject, item.msg.data,
                     error[:2000], attempts))
                await checkpoints.advance(conn, self.settings.database_schema, self.projection.name,
                                          item.position, item.stream_seq)
        log.error("%s: parked event at position %s after %s attempts: %s", self.projection.name, item.position,
                  attempts, error)


def _decode(msg: Msg, categories: frozenset[str]) -> Decoded:
    """The event, decoded only when the projection reads its category (the subject's next-to-last token):
    a projection of a few categories on a consumer of every subject skips the others without parsing them."""
    stream_seq = msg.metadata.sequence.stream
    headers = msg.headers or {}
    tokens = msg.subject.rsplit(".", 2)
    position_header = headers.get("Causeloop-Position", "")
    if len(tokens) == 3 and tokens[1] not in categories and position_header.isdigit():
        return Decoded(msg=msg, stream_seq=stream_seq, position=int(position_header), event=None, skipped=True)
    try:
        position, event = codec.from_public(msg.data)
    except (codec.MalformedEvent, codec.UnknownEventType) as exc:
        fallback = int(headers.get("Causeloop-Position", "0") or 0)
        return Decoded(msg=msg, stream_seq=stream_seq, position=fallback, event=None, error=repr(exc))
    return Decoded(msg=msg, stream_seq=stream_seq, position=position, event=event)


async def run_projector(settings: Settings, name: str, stopping: asyncio.Event) -> None:
    """Stand by until elected for this projection, then project until `stopping`."""
    projection = PROJECTIONS[name]
    while not stopping.is_set():
        lock = await leadership.acquire(settings, f"projector:{name}", stopping)
        if lock is None:
            return
        try:
            await _lead(settings, projection, stopping)
        except Exception:
            log.exception("projector %s failed; restarting", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)
        finally:
            await lock.close()


async def _lead(settings: Settings, projection: Projection, stopping: asyncio.Event) -> None:
    runner: ProjectorRunner | None = None

    async def on_reconnect() -> None:
        if runner is not None:
            runner.resubscribe.set()

    nc: Client = await nats_connect(settings, name=f"causeloop-projector-{projection.name}",
                                    on_reconnect=on_reconnect)
    pool = create_pool(settings, min_size=1, max_size=2, name=f"projector-{projection.name}")
    await pool.open()
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings)
        runner = ProjectorRunner(settings, projection, pool, js)
        await runner.run(stopping)
    finally:
        await pool.close()
        await nc.drain()
