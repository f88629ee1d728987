"""Runs read models from JetStream: checkpoints + read-model writes in one transaction, ack after commit."""

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
from adapters.event_store import read_head, store_id
from adapters.nats import POSITION_HEADER, STORE_HEADER, ensure_stream, fetch_batch
from adapters.nats import connect as nats_connect
from adapters.postgres import AsyncConn, create_pool, writer_transaction
from adapters.settings import Settings
from projections import checkpoints, dead_letters
from projections.dead_letters import Unapplied
from projections.registry import PROJECTIONS, Projection
from workers import leadership

log = logging.getLogger(__name__)

BATCH = 500
FETCH_TIMEOUT_S = 1.0
WATCHDOG_IDLE_S = 5.0
CONSUMER_LIST_PAGE = 256


class Decoded(msgspec.Struct, frozen=True):
    msg: Msg
    stream_seq: int
    position: int
    event: codec.AnyEvent | None
    category: str | None = None
    """The subject's category token; None when the subject does not have the documented shape."""
    error: str | None = None
    foreign: str | None = None
    """Why the message is not an event of this store (it is parked, never applied); None when it is."""

    def read_by(self, projection: Projection) -> bool:
        """False for another category's event, seen only because the consumer reads every subject: it still
        moves that projection's checkpoint."""
        return self.category is None or self.category in projection.categories


def consumer_name(projections: Sequence[Projection]) -> str:
    """One durable per set of read models; a set of one keeps the projection's own `proj-<name>-v<version>`."""
    return "proj-" + "-".join(f"{p.name}-v{p.version}" for p in sorted(projections, key=lambda p: p.name))


def hosted_by(durable: str) -> frozenset[str]:
    """The read models a consumer named by `consumer_name` feeds; empty for any other consumer."""
    parts = durable.removeprefix("proj-").split("-")
    versions = parts[1::2]
    if not durable.startswith("proj-") or len(parts) % 2 or not all(v[:1] == "v" and v[1:].isdigit() for v in versions):
        return frozenset()
    return frozenset(parts[0::2])


class ProjectorRunner:
    """Consumes in stream order (= event-store order); never trusts consumer state for correctness.

    One consumer feeds every read model the runner hosts, so each event is delivered, decoded and acked once
    however many read models want it; each batch lands in all of them in one transaction, each with its own
    checkpoint. When that transaction fails, each read model retries on its own, so a message one of them cannot
    take is parked for that one only.

    On every (re)start the durable consumer is recreated to begin right after the lowest stream sequence stored
    with the checkpoints, so messages delivered to a crashed predecessor are seen again in order, and the
    position check in each checkpoint row turns every repeat into a no-op.
    """

    def __init__(self, settings: Settings, projections: Sequence[Projection], pool: AsyncConnectionPool[AsyncConn],
                 js: JetStreamContext) -> None:
        self.settings = settings
        self.projections = tuple(sorted(projections, key=lambda p: p.name))
        self.names = [p.name for p in self.projections]
        self.label = "+".join(self.names)
        self.durable = consumer_name(self.projections)
        self.categories: frozenset[str] = frozenset().union(*(p.categories for p in self.projections))
        self.pool = pool
        self.js = js
        self.resubscribe = asyncio.Event()
        self.attempts: dict[tuple[str, int], int] = {}
        self.store = ""
        """This event store's id: a message without it is never applied."""
        self.head = 0
        """The highest position known to be stored: a message beyond it is not this store's event."""

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        async with self.pool.connection() as conn:
            held = [await checkpoints.read(conn, name) for name in self.names]
            self.store = await store_id(conn)
            await conn.rollback()
        stream_seq = await self._resume_after(min(seq for _, seq in held), min(position for position, _ in held))
        config = ConsumerConfig(
            durable_name=self.durable, ack_policy=AckPolicy.ALL, ack_wait=30, max_deliver=-1,
            max_ack_pending=BATCH * 4, filter_subject=self._filter(),
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if stream_seq > 0 else DeliverPolicy.ALL,
            opt_start_seq=stream_seq + 1 if stream_seq > 0 else None,
        )
        await self._retire_other_consumers()
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(self.settings.nats_stream, self.durable)
        await self.js.add_consumer(self.settings.nats_stream, config)
        self.resubscribe.clear()
        return await self.js.pull_subscribe_bind(self.durable, stream=self.settings.nats_stream)

    async def _resume_after(self, stream_seq: int, position: int) -> int:
        """The stream sequence to resume after: the stored one while the stream still holds what it numbered (the
        message there is this store's, at or below the checkpoints), else 0. A stream deleted and created again
        (`relay reset-stream`) numbers other messages from 1: replay it all, positions filter the repeats."""
        if stream_seq == 0:
            return 0
        try:
            msg = await self.js.get_msg(self.settings.nats_stream, seq=stream_seq)
        except NotFoundError:  # removed (purged, aged out: nothing after it is missed) or never there (re-created)
            first = (await self.js.stream_info(self.settings.nats_stream)).state.first_seq
            return stream_seq if stream_seq < first else 0
        headers = msg.headers or {}
        text = str(headers.get(POSITION_HEADER, ""))
        same = headers.get(STORE_HEADER) == self.store and text.isdigit() and int(text) <= position
        return stream_seq if same else 0

    async def _retire_other_consumers(self) -> None:
        """Delete the consumers of an earlier version or grouping of any read model hosted here.

        Nobody else can be reading them: this process leads every one of these read models. Left alone they
        would keep their state on the stream for good (after a deploy that regroups or bumps a read model).
        """
        names: list[str] = []
        while True:  # the server lists a page (at most CONSUMER_LIST_PAGE) per request
            infos = await self.js.consumers_info(self.settings.nats_stream, offset=len(names))
            names += [info.name for info in infos]
            if len(infos) < CONSUMER_LIST_PAGE:
                break
        for name in names:
            if name != self.durable and hosted_by(name) & set(self.names):
                log.info("%s: deleting the stale consumer %s", self.label, name)
                with contextlib.suppress(NotFoundError):
                    await self.js.delete_consumer(self.settings.nats_stream, name)

    def _filter(self) -> str:
        """One filter subject (nats-server 2.9 has no filter_subjects): the one category read, or every subject
        when several are — the events nobody here reads are skipped undecoded, the checkpoints still move."""
        if len(self.categories) == 1:
            (category,) = self.categories
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
                    log.warning("%s: consumer stalled behind the stream; resubscribing", self.label)
                    self.resubscribe.set()
        await sub.unsubscribe()

    async def _stalled(self) -> bool:
        """Fetches keep coming back empty although the consumer has messages waiting (or is gone)."""
        try:
            consumer = await self.js.consumer_info(self.settings.nats_stream, self.durable)
        except NotFoundError:
            return True
        return bool(consumer.num_pending)

    async def handle(self, messages: Sequence[Msg]) -> None:
        decoded = [_decode(msg, self.categories, self.store) for msg in messages]
        try:
            await self.commit(self.projections, decoded)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise  # the database is away, or was: start a new term from the checkpoints (it may have lost commits)
        except Exception:
            log.exception("%s: batch failed; retrying each read model on its own", self.label)
            for projection in self.projections:
                await self._commit_isolated(projection, decoded)
        # AckPolicy.ALL: acking the latest delivery acks the whole batch, one message to NATS instead of one each.
        await max(messages, key=lambda msg: msg.metadata.sequence.consumer).ack()

    async def _commit_isolated(self, projection: Projection, batch: Sequence[Decoded]) -> None:
        if len(self.projections) > 1:
            try:
                await self.commit((projection,), batch)
                return
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise
            except Exception:
                log.exception("%s: batch failed; isolating", projection.name)
        for item in batch:
            await self._commit_alone(projection, item)

    async def _commit_alone(self, projection: Projection, item: Decoded) -> None:
        """Retry one message; after N failures park it (with the checkpoint move) instead of blocking forever."""
        key = (projection.name, item.position)
        while True:
            try:
                await self.commit((projection,), [item])
                return
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the database is away: that is no fault of the message, so restart instead of parking
            except Exception as exc:
                attempts = self.attempts.get(key, 0) + 1
                self.attempts[key] = attempts
                if attempts >= self.settings.projector_max_deliveries:
                    await self.park(projection, item, repr(exc), attempts)
                    return
                await asyncio.sleep(0.05 * 2 ** attempts)

    async def commit(self, projections: Sequence[Projection], batch: Sequence[Decoded]) -> None:
        """Apply the batch's events to each read model and move its checkpoint; park its foreign messages (for each
        read model that reads their category) without moving anything: their positions are another store's."""
        async with writer_transaction(self.pool) as conn:
            held = await checkpoints.lock_many(conn, [p.name for p in projections])
            own, foreign = await self._own_and_foreign(conn, batch)
            moved: dict[str, int] = {}
            standing: set[str] = set()
            for projection in projections:
                for item in foreign:
                    if item.read_by(projection):
                        await dead_letters.park(conn, projection.name, _unapplied(item, item.foreign or ""))
                moved[projection.name] = await _apply(conn, projection, held[projection.name], own)
                if projection.guards_standing:
                    standing |= _workspaces(projection, held[projection.name], own)
            if standing:  # first: a process hears it before the checkpoint advance that ends a read-your-writes wait
                await checkpoints.announce_standing(conn, self.settings.database_schema, standing)
            await checkpoints.advance_many(conn, self.settings.database_schema, moved,
                                           max((item.stream_seq for item in own), default=0))
        for projection in projections:
            for item in batch:
                self.attempts.pop((projection.name, item.position), None)

    async def _own_and_foreign(self, conn: AsyncConn,
                               batch: Sequence[Decoded]) -> tuple[list[Decoded], list[Decoded]]:
        """Split off the messages that are not this store's events: another store's, and those beyond the store's
        head (a stream ahead of a database restored from an older backup). The head is read again only when a
        message goes past the last one read."""
        if max((item.position for item in batch if item.foreign is None), default=0) > self.head:
            self.head = await read_head(conn)
        own: list[Decoded] = []
        foreign: list[Decoded] = []
        for item in batch:
            if item.foreign is None and item.position > self.head:
                item = msgspec.structs.replace(
                    item, foreign=f"position {item.position} is beyond this event store's head ({self.head})")
            (own if item.foreign is None else foreign).append(item)
        return own, foreign

    async def park(self, projection: Projection, item: Decoded, error: str, attempts: int) -> None:
        async with writer_transaction(self.pool) as conn:
            position = await checkpoints.lock(conn, projection.name)
            if item.position > position:
                await dead_letters.park(conn, projection.name, _unapplied(item, error, attempts))
                await checkpoints.advance(conn, self.settings.database_schema, projection.name,
                                          item.position, item.stream_seq)
        log.error("%s: parked event at position %s after %s attempts: %s", projection.name, item.position,
                  attempts, error)


async def _apply(conn: AsyncConn, projection: Projection, position: int, batch: Sequence[Decoded]) -> int:
    """Project the batch's new events of this read model's categories; return its checkpoint after them."""
    fresh: list[tuple[int, codec.AnyEvent]] = []
    for item in batch:
        if item.position <= position:
            continue
        position = item.position
        if not item.read_by(projection):
            continue
        if item.event is None:
            raise ValueError(item.error or "undecodable message")
        fresh.append((item.position, item.event))
    if fresh:
        await projection.project(conn, fresh)
    return position


def _workspaces(projection: Projection, position: int, batch: Sequence[Decoded]) -> set[str]:
    """The workspaces of the events this read model applied from the batch (those past its checkpoint)."""
    return {item.event.workspace_id for item in batch
            if item.position > position and item.event is not None and item.read_by(projection)}


def _unapplied(item: Decoded, error: str, deliveries: int = 1) -> Unapplied:
    return Unapplied(position=item.position, payload=item.msg.data, error=error, subject=item.msg.subject,
                     stream_seq=item.stream_seq, deliveries=deliveries, foreign_reason=item.foreign)


def _decode(msg: Msg, categories: frozenset[str], store: str) -> Decoded:
    """The event, decoded only when one of the hosted read models reads its category (the subject's
    next-to-last token): on a consumer of every subject the others are skipped without parsing them. A message
    not stamped with this store's id is never decoded: it is foreign."""
    stream_seq = msg.metadata.sequence.stream
    headers = msg.headers or {}
    tokens = msg.subject.rsplit(".", 2)
    category = tokens[1] if len(tokens) == 3 else None
    position_header = headers.get(POSITION_HEADER, "")
    owner = headers.get(STORE_HEADER)
    if owner != store:
        return Decoded(msg=msg, stream_seq=stream_seq, position=int(position_header) if position_header.isdigit()
                       else 0, event=None, category=category,
                       foreign=f"a message of event store {owner}" if owner else "a message without a store id")
    if category is not None and category not in categories and position_header.isdigit():
        return Decoded(msg=msg, stream_seq=stream_seq, position=int(position_header), event=None, category=category)
    try:
        position, event = codec.from_public(msg.data)
    except (codec.MalformedEvent, codec.UnknownEventType) as exc:
        fallback = int(position_header) if position_header.isdigit() else 0
        return Decoded(msg=msg, stream_seq=stream_seq, position=fallback, event=None, category=category,
                       error=repr(exc))
    return Decoded(msg=msg, stream_seq=stream_seq, position=position, event=event, category=category)


async def run_projectors(settings: Settings, names: Sequence[str], stopping: asyncio.Event) -> None:
    """Stand by until elected for every one of these read models, then project them until `stopping`."""
    await run_hosted(settings, [PROJECTIONS[name] for name in sorted(set(names))], stopping, flush_commits=False)


async def run_hosted(settings: Settings, projections: Sequence[Projection], stopping: asyncio.Event, *,
                     flush_commits: bool = True) -> None:
    """`run_projectors` for any projections, registered or not (the webhook delivery worker's decisions).

    `flush_commits=False` (read models only): a commit does not wait for its WAL flush. A database crash may then
    lose the last commits, each with its checkpoint, after their messages were acked; the crash also breaks this
    runner's connections, so it restarts here and subscribes again from the checkpoints, and those events are
    projected again (docs/decisions/017-projector-commits-do-not-wait-for-the-wal-flush.md)."""
    label = "+".join(p.name for p in projections)
    while not stopping.is_set():
        lock = await leadership.acquire_all(settings, [f"projector:{p.name}" for p in projections], stopping)
        if lock is None:
            return
        try:
            await _lead(settings, projections, stopping, flush_commits=flush_commits)
        except Exception:
            log.exception("projector %s failed; restarting", label)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)
        finally:
            await lock.close()


async def _lead(settings: Settings, projections: Sequence[Projection], stopping: asyncio.Event, *,
                flush_commits: bool) -> None:
    runner: ProjectorRunner | None = None

    async def on_reconnect() -> None:
        if runner is not None:
            runner.resubscribe.set()

    label = "+".join(p.name for p in projections)
    nc: Client = await nats_connect(settings, name=f"causeloop-projector-{label}", on_reconnect=on_reconnect)
    pool = create_pool(settings, min_size=1, max_size=2, name=f"projector-{label}", custom_plans=True,
                       flush_commits=flush_commits)
    await pool.open()
    failed = True
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings)
        runner = ProjectorRunner(settings, projections, pool, js)
        await runner.run(stopping)
        failed = False
    finally:
        await pool.close()
        # A failed runner starts again from its checkpoints, so nothing in flight needs finishing; draining would
        # wait out its timeout (30 s) on the pull subscription's undelivered messages before the restart.
        await (nc.close() if failed else nc.drain())
