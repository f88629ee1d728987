"""The recommendation worker: folds pattern, settings, prediction and recommendation events (a folding worker,
workers/folding.py), proposes fixes from the knowledge base when a pattern reaches the workspace's confidence threshold,
reopens a recommendation when a matching issue arrives after its fix, and — on every fetch cycle (about once a
second) — verifies the recommendations whose proof window has passed at its clock (injectable, so tests control
time). Its consumer, catch-up and loop are the shared ones of workers/folding.py (verifying is its `tick`).

Its state (domain/recommendations/recommender.py) is rebuilt at start from the event store; every decision it
appends is idempotent (a proposal's stream is keyed by pattern and playbook; a reopen or a verification re-checks
the recommendation it loads), so deciding again after a crash appends nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from nats.js import JetStreamContext

from adapters.event_store import EventStore
from adapters.settings import Settings
from commands.group_commit import GroupCommitter
from commands.recommendations import RecommendationCommands
from commands.runner import CommandRunner, Result, utc_now
from domain.recommendations import recommendation as rules
from domain.recommendations.recommender import Propose, Recommender, Reopen
from workers.folding import FoldingWorker, run_elected

log = logging.getLogger(__name__)

DURABLE = "recommender-v1"
CATEGORIES = frozenset({"pattern", "settings", "prediction", "recommendation"})
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


class RecommendationWorker(FoldingWorker[Propose | Reopen]):
    durable = DURABLE
    categories = CATEGORIES

    def __init__(self, settings: Settings, store: EventStore, commands: RecommendationCommands,
                 js: JetStreamContext, clock: Clock = utc_now) -> None:
        super().__init__(settings, store, js)
        self.commands = commands
        self.clock = clock
        self.recommender = Recommender()

    async def observe_history(self, events: list[tuple[int, object]]) -> list[Propose | Reopen]:
        decisions = await self.observe([event for _, event in events])
        return still_pending(self.recommender, decisions)

    async def observe(self, events: list[object]) -> list[Propose | Reopen]:
        return [decision for event in events for decision in self.recommender.observe(event)]

    async def apply(self, decisions: Sequence[Propose | Reopen]) -> None:
        for decision in decisions:
            if isinstance(decision, Propose):
                for result in await self.commands.propose(decision.workspace_id, decision.pattern_id,
                                                          decision.proposals):
                    self._fold(result)
            else:
                self._fold(await self.commands.reopen(decision.workspace_id, decision.recommendation_id,
                                                      decision.issue_id, decision.opened_at))

    async def tick(self) -> None:
        """Verify every recommendation whose proof window has passed at the worker's clock."""
        for state in self.recommender.due(self.clock()):
            self._fold(await self.commands.verify(state.workspace_id, state.id))

    def _fold(self, result: Result) -> None:
        """What a command appended is known at once (its NATS echo is then a no-op)."""
        for event in result.stream:
            self.recommender.observe(event)


async def run_recommender(settings: Settings, stopping: asyncio.Event, clock: Clock = utc_now) -> None:
    """Stand by until elected, then recommend until `stopping`; on failure start over (state rebuilt)."""
    def build(store: EventStore, committer: GroupCommitter, js: JetStreamContext) -> RecommendationWorker:
        commands = RecommendationCommands(CommandRunner(store, committer, clock=clock))
        return RecommendationWorker(settings, store, commands, js, clock)
    await run_elected(settings, stopping, "recommender", build)
