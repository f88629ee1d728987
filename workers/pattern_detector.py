"""The pattern-detection worker: consumes issue and pattern events from JetStream (its own durable consumer) and
assigns every new issue to a pattern, appending its decisions through the command runner.

Its working state (domain/patterns/detector.py) is rebuilt at start from the event store, which is also its
checkpoint: a first pass counts the links it already recorded for each issue, a second folds every event in order
and appends only the decisions not yet recorded (after a crash between deciding and appending, say). Its consumer,
catch-up and loop are the shared ones of workers/folding.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence

from nats.js import JetStreamContext

from adapters.event_store import EventStore
from adapters.settings import Settings
from commands.group_commit import GroupCommitter
from commands.patterns import PatternCommands
from commands.runner import CommandRunner
from domain.patterns.detector import Decide, Detector
from domain.patterns.events import IssueLinkedToPattern
from domain.patterns.grouping import MatchMethod
from workers.folding import FoldingWorker, run_elected

log = logging.getLogger(__name__)

DURABLE = "pattern-detector-v1"
CATEGORIES = frozenset({"issue", "pattern", "settings"})


def recorded_links(events: Sequence[tuple[int, object]]) -> Counter[str]:
    """How many detector links each issue has (merges move issues; they are not the detector's decisions)."""
    counts: Counter[str] = Counter()
    for _, event in events:
        if isinstance(event, IssueLinkedToPattern) and event.method != MatchMethod.MERGE.value:
            counts[event.issue_id] += 1
    return counts


def replay(detector: Detector, events: Sequence[tuple[int, object]]) -> list[Decide]:
    """Fold the history into the detector; answer the decisions it makes that the history does not record yet: a
    link is recorded by its `IssueLinkedToPattern`, a reanalysis that kept the issue by the `IssueAnalyzed` after it
    (the detector's `awaiting`), and members' refreshed analyses with the link that made them stale."""
    recorded = recorded_links(events)
    pending: list[Decide] = []
    reaffirms: dict[tuple[str, str], Decide] = {}
    for _, event in events:
        link_pending = False
        for decision in detector.observe(event):
            if decision.refresh:  # appended with its event's link: pending when that link is
                if link_pending:
                    pending.append(decision)
            elif decision.reaffirm:
                reaffirms[(decision.workspace_id, decision.issue_id)] = decision
            elif recorded[decision.issue_id] > 0:
                recorded[decision.issue_id] -= 1
            else:
                pending.append(decision)
                link_pending = True
    return pending + [decision for key, decision in reaffirms.items() if key in detector.awaiting]


class PatternDetector(FoldingWorker[Decide]):
    durable = DURABLE
    categories = CATEGORIES

    def __init__(self, settings: Settings, store: EventStore, commands: PatternCommands,
                 js: JetStreamContext) -> None:
        super().__init__(settings, store, js)
        self.commands = commands
        self.detector = Detector()

    async def observe_history(self, events: list[tuple[int, object]]) -> list[Decide]:
        pending = await asyncio.to_thread(replay, self.detector, events)  # CPU: off the loop the API may share
        if pending:
            log.info("pattern detector: %d issues to assign after catching up", len(pending))
        return pending

    async def observe(self, events: list[object]) -> list[Decide]:
        """Fold a batch (on a thread: grouping is CPU work, and `causeloop up` runs the API on the same loop;
        only this worker's one task touches the detector)."""
        return await asyncio.to_thread(
            lambda: [decision for event in events for decision in self.detector.observe(event)])

    async def apply(self, decisions: Sequence[Decide]) -> None:
        """Append the decisions: those for one pattern in one command (in order), patterns concurrently."""
        by_pattern: dict[tuple[str, str], list[Decide]] = defaultdict(list)
        for decision in decisions:
            by_pattern[(decision.workspace_id, decision.pattern_key)].append(decision)

        await asyncio.gather(*(self.commands.record(group) for group in by_pattern.values()))


async def run_pattern_detector(settings: Settings, stopping: asyncio.Event) -> None:
    """Stand by until elected, then detect until `stopping`; on failure start over (state rebuilt)."""
    def build(store: EventStore, committer: GroupCommitter, js: JetStreamContext) -> PatternDetector:
        return PatternDetector(settings, store, PatternCommands(CommandRunner(store, committer)), js)
    await run_elected(settings, stopping, "pattern-detector", build)
