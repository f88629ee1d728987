"""The pattern-detection worker: consumes issue and pattern events from JetStream (its own durable consumer) and
assigns every new issue to a pattern, appending its decisions through the command runner.

Its working state (domain/patterns/detector.py) is rebuilt at start from the event store, which is also its
checkpoint: a first pass counts the links it already recorded for each issue, a second folds every event in order
and appends only the decisions not yet recorded (after a crash between deciding and appending, say). The durable
consumer is created before that read with DeliverPolicy.NEW, so nothing published meanwhile is missed; messages at
or below the position read are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from adapters import codec
from adapters.event_store import EventStore
from adapters.nats import connect as nats_connect
from adapters.nats import ensure_stream, fetch_batch
from adapters.settings import Settings
from commands.group_commit import GroupCommitter
from commands.patterns import PatternCommands
from commands.runner import CommandRunner
from domain.patterns.detector import Decide, Detector
from domain.patterns.events import IssueLinkedToPattern
from domain.patterns.grouping import MatchMethod
from workers import leadership

log = logging.getLogger(__name__)

DURABLE = "pattern-detector-v1"
BATCH = 500
FETCH_TIMEOUT_S = 1.0
READ_PAGE = 2_000
CATEGORIES = frozenset({"issue", "pattern", "settings"})


def recorded_links(events: Sequence[tuple[int, object]]) -> Counter[str]:
    """How many detector links each issue has (merges move issues; they are not the detector's decisions)."""
    counts: Counter[str] = Counter()
    for _, event in events:
        if isinstance(event, IssueLinkedToPattern) and event.method != MatchMethod.MERGE.value:
            counts[event.issue_id] += 1
    return counts


def replay(detector: Detector, events: Sequence[tuple[int, object]]) -> list[Decide]:
    """Fold the history into the detector; answer the decisions it makes that the history does not record yet."""
    recorded = recorded_links(events)
    pending: list[Decide] = []
    for _, event in events:
        for decision in detector.observe(event):
            if recorded[decision.issue_id] > 0:
                recorded[decision.issue_id] -= 1
            else:
                pending.append(decision)
    return pending


class PatternDetector:
    def __init__(self, settings: Settings, store: EventStore, commands: PatternCommands,
                 js: JetStreamContext) -> None:
        self.settings = settings
        self.store = store
        self.commands = commands
        self.js = js
        self.detector = Detector()
        self.position = 0

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(self.settings.nats_stream, DURABLE)
        config = ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.ALL, ack_wait=30, max_deliver=-1,
                                max_ack_pending=BATCH * 4, deliver_policy=DeliverPolicy.NEW,
                                filter_subject=f"{self.settings.subject_prefix}.>")
        await self.js.add_consumer(self.settings.nats_stream, config)
        return await self.js.pull_subscribe_bind(DURABLE, stream=self.settings.nats_stream)

    async def catch_up(self) -> None:
        """Rebuild the state from the whole history and append the decisions it lacks."""
        events: list[tuple[int, object]] = []
        while True:
            page = await asyncio.to_thread(self.store.read, self.position, READ_PAGE)
            if not page:
                break
            events += [(position, event) for position, event in page if event.category in CATEGORIES]
            self.position = page[-1][0]
        pending = await asyncio.to_thread(replay, self.detector, events)  # CPU: off the loop the API may share
        if pending:
            log.info("pattern detector: %d issues to assign after catching up", len(pending))
        await self.apply(pending)

    async def apply(self, decisions: Sequence[Decide]) -> None:
        """Append the decisions: those for one pattern in one command (in order), patterns concurrently."""
        by_pattern: dict[tuple[str, str], list[Decide]] = defaultdict(list)
        for decision in decisions:
            by_pattern[(decision.workspace_id, decision.pattern_key)].append(decision)

        await asyncio.gather(*(self.commands.record(group) for group in by_pattern.values()))

    def _observe_all(self, events: Sequence[object]) -> list[Decide]:
        """Fold a batch (on a thread: grouping is CPU work, and `causeloop up` runs the API on the same loop;
        only this worker's one task touches the detector)."""
        return [decision for event in events for decision in self.detector.observe(event)]

    async def run(self, stopping: asyncio.Event) -> None:
        sub = await self.subscribe()
        await self.catch_up()
        while not stopping.is_set():
            messages = await fetch_batch(sub, BATCH, FETCH_TIMEOUT_S)
            if not messages:
                continue
            fresh: list[object] = []
            for msg in messages:
                category = msg.subject.rsplit(".", 2)[1] if msg.subject.count(".") >= 2 else None
                if category not in CATEGORIES:
                    continue
                try:
                    position, event = codec.from_public(msg.data)
                except (codec.MalformedEvent, codec.UnknownEventType):
                    log.exception("pattern detector: skipping an undecodable message %s", msg.subject)
                    continue
                if position <= self.position:
                    continue
                self.position = position
                fresh.append(event)
            decisions = await asyncio.to_thread(self._observe_all, fresh) if fresh else []
            await self.apply(decisions)
            await max(messages, key=lambda msg: msg.metadata.sequence.consumer).ack()
        await sub.unsubscribe()


async def run_pattern_detector(settings: Settings, stopping: asyncio.Event) -> None:
    """Stand by until elected, then detect until `stopping`; on failure start over (state rebuilt)."""
    while not stopping.is_set():
        lock = await leadership.acquire_all(settings, ["pattern-detector"], stopping)
        if lock is None:
            return
        try:
            await _lead(settings, stopping)
        except Exception:
            log.exception("pattern detector failed; restarting")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)
        finally:
            await lock.close()


async def _lead(settings: Settings, stopping: asyncio.Event) -> None:
    nc: Client = await nats_connect(settings, name="causeloop-pattern-detector")
    store = EventStore(settings, pool_size=2)
    committer = GroupCommitter(store)
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings)
        detector = PatternDetector(settings, store, PatternCommands(CommandRunner(store, committer)), js)
        await detector.run(stopping)
    finally:
        committer.close()
        store.close()
        await nc.drain()
