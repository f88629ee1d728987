"""The one shape of the workers that fold the event history into their state and decide from it (the pattern
detector, the recommender, the prediction worker), so each keeps only its own folding and deciding.

A worker has its own durable JetStream consumer, created afresh with DeliverPolicy.NEW *before* it reads the event
store, so nothing published meanwhile is missed; the event store is its checkpoint: at start it folds the whole
history of its categories and applies the decisions the history does not record yet; then it folds each fetched
batch (messages at or below the position read are skipped), applies the decisions, acks the batch, and runs its
periodic `tick` every `tick_s`. One leader at a time runs it (an advisory lock); on failure it starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from adapters import codec
from adapters.event_store import EventStore
from adapters.nats import connect as nats_connect
from adapters.nats import ensure_stream, fetch_batch
from adapters.settings import Settings
from commands.group_commit import GroupCommitter
from workers import leadership

log = logging.getLogger(__name__)

READ_PAGE = 2_000
D = TypeVar("D")


class FoldingWorker(ABC, Generic[D]):
    """Subclasses name their durable and categories and say how to fold and apply; this runs the rest."""

    durable: str
    categories: frozenset[str]
    batch = 500
    fetch_timeout_s = 1.0
    tick_s = 0.0
    """How often `tick` runs (0: after every fetch)."""

    def __init__(self, settings: Settings, store: EventStore, js: JetStreamContext) -> None:
        self.settings = settings
        self.store = store
        self.js = js
        self.position = 0

    @abstractmethod
    async def observe_history(self, events: list[tuple[int, object]]) -> Sequence[D]:
        """Fold the whole history; answer the decisions it does not record yet."""

    @abstractmethod
    async def observe(self, events: list[object]) -> Sequence[D]:
        """Fold new events; answer the decisions they call for."""

    @abstractmethod
    async def apply(self, decisions: Sequence[D]) -> None:
        """Append the decisions through the worker's commands."""

    async def tick(self) -> None:
        """Periodic work at the worker's clock (none by default)."""

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(self.settings.nats_stream, self.durable)
        config = ConsumerConfig(durable_name=self.durable, ack_policy=AckPolicy.ALL, ack_wait=30, max_deliver=-1,
                                max_ack_pending=self.batch * 4, deliver_policy=DeliverPolicy.NEW,
                                filter_subject=f"{self.settings.subject_prefix}.>")
        await self.js.add_consumer(self.settings.nats_stream, config)
        return await self.js.pull_subscribe_bind(self.durable, stream=self.settings.nats_stream)

    async def catch_up(self) -> None:
        events: list[tuple[int, object]] = []
        while True:
            page = await asyncio.to_thread(self.store.read, self.position, READ_PAGE)
            if not page:
                break
            events += [(position, event) for position, event in page if event.category in self.categories]
            self.position = page[-1][0]
        await self.apply(await self.observe_history(events))

    def fresh(self, messages: Sequence[Msg]) -> list[object]:
        """The batch's events of this worker's categories not folded yet (undecodable ones logged and skipped)."""
        events: list[object] = []
        for msg in messages:
            category = msg.subject.rsplit(".", 2)[1] if msg.subject.count(".") >= 2 else None
            if category not in self.categories:
                continue
            try:
                position, event = codec.from_public(msg.data)
            except (codec.MalformedEvent, codec.UnknownEventType):
                log.exception("%s: skipping an undecodable message %s", self.durable, msg.subject)
                continue
            if position > self.position:
                self.position = position
                events.append(event)
        return events

    async def run(self, stopping: asyncio.Event) -> None:
        sub = await self.subscribe()
        await self.catch_up()
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self.tick_s
        while not stopping.is_set():
            messages = await fetch_batch(sub, self.batch, self.fetch_timeout_s)
            if messages:
                events = self.fresh(messages)
                if events:
                    await self.apply(await self.observe(events))
                await max(messages, key=lambda msg: msg.metadata.sequence.consumer).ack()
            if loop.time() >= next_tick:
                await self.tick()
                next_tick = loop.time() + self.tick_s
        await sub.unsubscribe()


Build = Callable[[EventStore, GroupCommitter, JetStreamContext], FoldingWorker[Any]]


async def run_elected(settings: Settings, stopping: asyncio.Event, name: str, build: Build) -> None:
    """Stand by until elected (advisory lock `name`), then run until `stopping`; on failure start over (state
    rebuilt)."""
    while not stopping.is_set():
        lock = await leadership.acquire_all(settings, [name], stopping)
        if lock is None:
            return
        try:
            await _lead(settings, stopping, name, build)
        except Exception:
            log.exception("%s failed; restarting", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)
        finally:
            await lock.close()


async def _lead(settings: Settings, stopping: asyncio.Event, name: str, build: Build) -> None:
    nc = await nats_connect(settings, name=f"causeloop-{name}")
    store = EventStore(settings, pool_size=2)
    committer = GroupCommitter(store)
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings)
        await build(store, committer, js).run(stopping)
    finally:
        committer.close()
        store.close()
        await nc.drain()
