"""The recommendation worker: consumes pattern, settings and recommendation events from JetStream (its own durable
consumer), proposes fixes from the knowledge base when a pattern reaches the workspace's confidence threshold,
reopens a recommendation when a matching issue arrives after its fix, and — on every fetch cycle (about once a
second) — verifies the recommendations whose proof window has passed at its clock (injectable, so tests control
time).

Its state (domain/recommendations/recommender.py) is rebuilt at start from the event store; every decision it
appends is idempotent (a proposal's stream is keyed by pattern and playbook; a reopen or a verification re-checks
the recommendation it loads), so deciding again after a crash appends nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

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
from commands.recommendations import RecommendationCommands
from commands.runner import CommandRunner, Result, utc_now
from domain.recommendations import recommendation as rules
from domain.recommendations.recommender import Propose, Recommender, Reopen
from workers import leadership

log = logging.getLogger(__name__)

DURABLE = "recommender-v1"
BATCH = 500
FETCH_TIMEOUT_S = 1.0
READ_PAGE = 2_000
CATEGORIES = frozenset({"pattern", "settings", "recommendation"})
Clock = Callable[[], datetime]


def still_pending(recommender: Recommender, decisions: Sequence[Propose | Reopen]) -> list[Propose | Reopen]:
    """After a replay, the decisions the history does not record yet (the rest would append nothing anyway)."""
    pending: list[Propose | Reopen] = []
    for decision in decisions:
        if isinstance(decision, Propose):
            if not recommender.by_pattern.get(decision.pattern_id):
                pending.append(decision)
            continue
        state = recommender.recommendations.get(decision.recommendation_id)
        if state is not None and rules.reopens(state, decision.opened_at):
            pending.append(decision)
    return pending


class RecommendationWorker:
    def __init__(self, settings: Settings, store: EventStore, commands: RecommendationCommands,
                 js: JetStreamContext, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.store = store
        self.commands = commands
        self.js = js
        self.clock = clock
        self.recommender = Recommender()
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
        decisions: list[Propose | Reopen] = []
        while True:
            page = await asyncio.to_thread(self.store.read, self.position, READ_PAGE)
            if not page:
                break
            for _, event in page:
                if event.category in CATEGORIES:
                    decisions += self.recommender.observe(event)
            self.position = page[-1][0]
        await self.apply(still_pending(self.recommender, decisions))

    async def apply(self, decisions: Sequence[Propose | Reopen]) -> None:
        for decision in decisions:
            if isinstance(decision, Propose):
                for result in await self.commands.propose(decision.workspace_id, decision.pattern_id,
                                                          decision.proposals):
                    self._fold(result)
            else:
                self._fold(await self.commands.reopen(decision.workspace_id, decision.recommendation_id,
                                                      decision.issue_id, decision.opened_at))

    async def verify_due(self) -> None:
        """Verify every recommendation whose proof window has passed at the worker's clock."""
        for state in self.recommender.due(self.clock()):
            self._fold(await self.commands.verify(state.workspace_id, state.id))

    def _fold(self, result: Result) -> None:
        """What a command appended is known at once (its NATS echo is then a no-op)."""
        for event in result.stream:
            self.recommender.observe(event)

    async def run(self, stopping: asyncio.Event) -> None:
        sub = await self.subscribe()
        await self.catch_up()
        while not stopping.is_set():
            messages = await fetch_batch(sub, BATCH, FETCH_TIMEOUT_S)
            decisions: list[Propose | Reopen] = []
            for msg in messages:
                category = msg.subject.rsplit(".", 2)[1] if msg.subject.count(".") >= 2 else None
                if category not in CATEGORIES:
                    continue
                try:
                    position, event = codec.from_public(msg.data)
                except (codec.MalformedEvent, codec.UnknownEventType):
                    log.exception("recommender: skipping an undecodable message %s", msg.subject)
                    continue
                if position <= self.position:
                    continue
                self.position = position
                decisions += self.recommender.observe(event)
            await self.apply(decisions)
            await self.verify_due()
            if messages:
                await max(messages, key=lambda msg: msg.metadata.sequence.consumer).ack()
        await sub.unsubscribe()


async def run_recommender(settings: Settings, stopping: asyncio.Event, clock: Clock = utc_now) -> None:
    """Stand by until elected, then recommend until `stopping`; on failure start over (state rebuilt)."""
    while not stopping.is_set():
        lock = await leadership.acquire_all(settings, ["recommender"], stopping)
        if lock is None:
            return
        try:
            await _lead(settings, stopping, clock)
        except Exception:
            log.exception("recommender failed; restarting")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)
        finally:
            await lock.close()


async def _lead(settings: Settings, stopping: asyncio.Event, clock: Clock) -> None:
    nc: Client = await nats_connect(settings, name="causeloop-recommender")
    store = EventStore(settings, pool_size=2)
    committer = GroupCommitter(store)
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings)
        commands = RecommendationCommands(CommandRunner(store, committer, clock=clock))
        worker = RecommendationWorker(settings, store, commands, js, clock)
        await worker.run(stopping)
    finally:
        committer.close()
        store.close()
        await nc.drain()
