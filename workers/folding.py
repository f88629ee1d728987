"""The one shape of the workers that fold the event history into their state and decide from it (the pattern
detector, the recommender, the prediction worker), so each keeps only its own folding and deciding.

The event store is the worker's checkpoint and its only source of events: at start it folds the whole history of
its categories and applies the decisions the history does not record yet; then its own durable JetStream consumer
(DeliverPolicy.NEW) only announces that something new is stored, and the worker reads the store past the position
it folded, folds, applies the decisions, acks the batch and runs its periodic `tick` every `tick_s`. So a message
the stream lost (a consumer re-created after a NATS restart, a stream reset) or one of another event store can
neither make it miss an event nor fold a foreign one; and when no message comes for `IDLE_READ_S` it reads the
store anyway. One leader at a time runs it (an advisory lock); on failure it starts over.
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

from adapters.codec import EVENT_TYPES
from adapters.event_store import EventStore
from adapters.nats import POSITION_HEADER, ensure_stream, fetch_batch
from adapters.nats import connect as nats_connect
from adapters.settings import Settings
from commands.group_commit import GroupCommitter
from workers import leadership

log = logging.getLogger(__name__)

READ_PAGE = 2_000
IDLE_READ_S = 5.0
"""Without a message for this long, read the store anyway: the stream may have lost what was announced."""
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
        self.types = frozenset(name for name, cls in EVENT_TYPES.items() if cls.category in self.categories)
        """The event types of this worker's categories: the only ones read from the store are decoded."""

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
        await self.apply(await self.observe_history(await self.read_new()))

    async def read_new(self) -> list[tuple[int, object]]:
        """The stored events of this worker's categories past the position folded; the position moves past them."""
        events: list[tuple[int, object]] = []
        while True:
            last, page = await asyncio.to_thread(self.store.read_types, self.position, READ_PAGE, self.types)
            if last == self.position:
                return events
            events += page
            self.position = last

    def announces(self, messages: Sequence[Msg]) -> bool:
        """Whether a message says something past the position folded is stored (no position header: assume so)."""
        for msg in messages:
            text = (msg.headers or {}).get(POSITION_HEADER, "")
            if not text.isdigit() or int(text) > self.position:
                return True
        return False

    async def run(self, stopping: asyncio.Event) -> None:
        sub = await self.subscribe()
        await self.catch_up()
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self.tick_s
        next_read = loop.time() + IDLE_READ_S
        while not stopping.is_set():
            messages = await fetch_batch(sub, self.batch, self.fetch_timeout_s)
            if self.announces(messages) or loop.time() >= next_read:
                events = [event for _, event in await self.read_new()]
                if events:
                    await self.apply(await self.observe(events))
                next_read = loop.time() + IDLE_READ_S
            if messages:
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
