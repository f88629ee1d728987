"""The prediction worker: keeps, for every active or emerging pattern, P(recurs within W days) for W in 7/30/90,
resolves each prediction when the pattern recurs or its window ends, and fires alert rules once per crossing.

Its consumer, catch-up and loop are the shared ones of workers/folding.py: it rebuilds its state from the event
store at start.
It recomputes a pattern on each IssueLinkedToPattern, and every pattern on a schedule (`tick_s`); the clock is
injectable, so a test decides what "now" is.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from nats.js import JetStreamContext

from adapters.event_store import EventStore
from adapters.settings import Settings
from commands.group_commit import GroupCommitter
from commands.predictions import PREDICTOR_ACTOR, PredictionCommands, prediction_stream
from commands.runner import CommandRunner, Result, utc_now
from domain.events import DomainEvent, Meta
from domain.ids import WorkspaceId, render
from domain.patterns.events import (
    IssueLinkedToPattern,
    IssueUnlinkedFromPattern,
    PatternDetected,
    PatternMerged,
    PatternStatus,
    PatternUpdated,
)
from domain.predictions import model
from domain.predictions import prediction as decide
from domain.predictions.events import AlertRuleEvent, PredictionEvent
from domain.predictions.prediction import AlertRule, Prediction
from workers.folding import FoldingWorker, run_elected

log = logging.getLogger(__name__)

DURABLE = "prediction-worker-v1"
CATEGORIES = frozenset({"pattern", "prediction", "alert_rule"})
ELIGIBLE = frozenset({PatternStatus.EMERGING, PatternStatus.ACTIVE})
MIN_CHANGE = 0.005
"""A scheduled recompute records an update only when the probability moved at least this much."""


Build = Callable[[Meta, Prediction | None], list[PredictionEvent]]


@dataclass
class PatternState:
    workspace_id: WorkspaceId
    name: str
    trigger: str
    status: PatternStatus = PatternStatus.EMERGING
    merged: bool = False
    opened: dict[str, datetime] = field(default_factory=dict)
    severities: dict[str, str] = field(default_factory=dict)

    @property
    def eligible(self) -> bool:
        return not self.merged and self.status in ELIGIBLE and bool(self.opened)


@dataclass
class State:
    """What the worker knows, folded from pattern, prediction and alert-rule events (each applied once by version)."""

    patterns: dict[str, PatternState] = field(default_factory=dict)
    predictions: dict[tuple[str, int], Prediction] = field(default_factory=dict)
    generations: dict[tuple[str, int], int] = field(default_factory=dict)
    by_id: dict[UUID, Prediction] = field(default_factory=dict)
    rules: dict[str, AlertRule] = field(default_factory=dict)

    def observe(self, event: object) -> str | None:
        """Fold one event; answer the pattern to recompute now (a new issue linked), if any."""
        match event:
            case PatternDetected():
                pattern_id = render("pat", event.originator_id)
                fp = event.fingerprint
                where = " / ".join(part for part in (fp.service, fp.component) if part)
                trigger = fp.error_signature + (f" on {where}" if where else "")
                self.patterns.setdefault(pattern_id, PatternState(workspace_id=event.workspace_id, name=event.name,
                                                                  trigger=trigger[:300]))
            case IssueLinkedToPattern():
                pattern = self.patterns.get(render("pat", event.originator_id))
                if pattern is not None:
                    pattern.opened[event.issue_id] = event.issue_opened_at
                    pattern.severities[event.issue_id] = event.severity
                    return render("pat", event.originator_id)
            case IssueUnlinkedFromPattern():
                pattern = self.patterns.get(render("pat", event.originator_id))
                if pattern is not None:
                    pattern.opened.pop(event.issue_id, None)
                    pattern.severities.pop(event.issue_id, None)
            case PatternUpdated():
                pattern = self.patterns.get(render("pat", event.originator_id))
                if pattern is not None and isinstance(event.status, PatternStatus):
                    pattern.status = event.status
                if pattern is not None and isinstance(event.name, str):
                    pattern.name = event.name
            case PatternMerged():
                pattern = self.patterns.get(render("pat", event.originator_id))
                if pattern is not None:
                    pattern.merged = True
            case PredictionEvent():
                self.fold_prediction([event])
            case AlertRuleEvent():
                self.fold_rule([event])
        return None

    def fold_prediction(self, events: Iterable[DomainEvent]) -> None:
        for event in events:
            if not isinstance(event, PredictionEvent):
                continue
            known = self.by_id.get(event.originator_id)
            if known is not None and event.originator_version <= known.version:
                continue
            folded = decide.project_prediction(known, [event])
            if folded is None:
                continue
            self.by_id[folded.id] = folded
            key = (folded.pattern_id, folded.window_days)
            current = self.predictions.get(key)
            if current is None or current.id == folded.id or current.predicted_at <= folded.predicted_at:
                self.predictions[key] = folded
            generation = self._generation(folded) + (1 if folded.resolved else 0)
            self.generations[key] = max(self.generations.get(key, 0), generation)

    def _generation(self, prediction: Prediction) -> int:
        """Which generation of its pattern's window the prediction is (streams are keyed by it): the current one
        or the next in the usual order, else searched."""
        key = (prediction.pattern_id, prediction.window_days)
        current: int = self.generations.get(key, 0)
        candidates: list[int] = [current, current + 1, *range(current)]
        for generation in candidates:
            if prediction_stream(prediction.workspace_id, prediction.pattern_id, prediction.window_days,
                                 generation) == prediction.id:
                return generation
        return current

    def fold_rule(self, events: Iterable[DomainEvent]) -> None:
        for event in events:
            if not isinstance(event, AlertRuleEvent):
                continue
            rule_id = render("alr", event.originator_id)
            known = self.rules.get(rule_id)
            if known is not None and event.originator_version <= known.version:
                continue
            folded = decide.project_rule(known, [event])
            if folded is not None:
                self.rules[rule_id] = folded


class PredictionWorker(FoldingWorker[str]):
    """Its decisions are the patterns to recompute because a new issue linked to them."""

    durable = DURABLE
    categories = CATEGORIES
    batch = 200
    fetch_timeout_s = 0.5

    def __init__(self, settings: Settings, store: EventStore, commands: PredictionCommands,
                 js: JetStreamContext, clock: Callable[[], datetime] = utc_now, tick_s: float = 60.0) -> None:
        super().__init__(settings, store, js)
        self.commands = commands
        self.clock = clock
        self.tick_s = tick_s
        self.state = State()
        self._calibrations: dict[tuple[str, int], tuple[tuple[int, int], model.Calibration]] = {}

    def calibration(self, workspace_id: str, window_days: int, now: datetime) -> model.Calibration:
        """Refitted when the day changes or the workspace's occurrences grew by a tenth (fitting is not free)."""
        patterns = [p for p in self.state.patterns.values() if p.workspace_id == workspace_id and not p.merged]
        total = sum(len(p.opened) for p in patterns)
        stamp = (int(now.timestamp() // 86_400), total)
        cached = self._calibrations.get((workspace_id, window_days))
        if cached is not None and cached[0][0] == stamp[0] and total <= cached[0][1] * 1.1:
            return cached[1]
        fitted = model.calibrate([model.History.of(p.opened.values()) for p in patterns], now, window_days)
        self._calibrations[(workspace_id, window_days)] = (stamp, fitted)
        return fitted

    async def recompute(self, pattern_id: str, *, new_issue: bool) -> None:
        pattern = self.state.patterns.get(pattern_id)
        if pattern is None:
            return
        now = self.clock()
        history = model.History.of(pattern.opened.values())
        for window in model.WINDOWS:
            key = (pattern_id, window)
            current = self.state.predictions.get(key)
            if current is not None and not current.resolved:
                recurred = min((t for t in pattern.opened.values()
                                if current.predicted_at < t <= min(now, current.expires_at)), default=None)
                if recurred is not None or now >= current.expires_at:
                    await self._apply(pattern.workspace_id, current.id, _expiring(recurred))
                    current = self.state.predictions.get(key)
            if not pattern.eligible:
                continue
            calibration = await asyncio.to_thread(self.calibration, pattern.workspace_id, window, now)
            # an occurrence stamped a moment ahead of this clock (another host's) counts as seen now
            latest = max(pattern.opened.values())
            forecast = await asyncio.to_thread(functools.partial(
                model.forecast, history, calibration, max(now, latest), trigger=pattern.trigger,
                severities=list(pattern.severities.values())))
            if forecast is None:
                continue
            if current is None or current.resolved:
                stream = prediction_stream(pattern.workspace_id, pattern_id, window, self.state.generations.get(key, 0))
                await self._apply(pattern.workspace_id, stream, _generating(stream, pattern_id, forecast))
            elif new_issue or abs(forecast.probability - current.probability) >= MIN_CHANGE:
                await self._apply(pattern.workspace_id, current.id, _updating(forecast))
            await self._alerts(pattern_id, pattern, window)

    async def _apply(self, workspace_id: WorkspaceId, stream: UUID, build: Build) -> None:
        result: Result = await self.commands.worker_step(workspace_id, stream, build)
        self.state.fold_prediction(result.stream)

    async def _alerts(self, pattern_id: str, pattern: PatternState, window: int) -> None:
        current = self.state.predictions.get((pattern_id, window))
        if current is None or current.resolved:
            return
        prediction_id = render("prd", current.id)
        for rule in list(self.state.rules.values()):
            if rule.workspace_id != pattern.workspace_id:
                continue

            def build(meta: Meta, rule: AlertRule, p: Prediction = current) -> list[AlertRuleEvent]:
                return decide.evaluate_rule(rule, meta, prediction_id=prediction_id, pattern_id=pattern_id,
                                            pattern_name=pattern.name, probability=p.probability,
                                            window_days=window)
            probe = decide.evaluate_rule(rule, _probe_meta(rule, self.clock()), prediction_id=prediction_id,
                                         pattern_id=pattern_id, pattern_name=pattern.name,
                                         probability=current.probability, window_days=window)
            if probe:
                result = await self.commands.evaluate_rule(pattern.workspace_id, rule.id, build)
                self.state.fold_rule(result.stream)

    async def tick(self) -> None:
        """The schedule: every pattern with something to do (a forecast to refresh or a prediction to resolve)."""
        open_patterns = {pattern_id for (pattern_id, _), p in self.state.predictions.items() if not p.resolved}
        for pattern_id, pattern in list(self.state.patterns.items()):
            if pattern.eligible or pattern_id in open_patterns:
                await self.recompute(pattern_id, new_issue=False)

    async def observe_history(self, events: list[tuple[int, object]]) -> list[str]:
        for _, event in events:
            self.state.observe(event)
        await self.tick()
        return []

    async def observe(self, events: list[object]) -> list[str]:
        touched = (self.state.observe(event) for event in events)
        return list(dict.fromkeys(pattern_id for pattern_id in touched if pattern_id is not None))

    async def apply(self, decisions: Sequence[str]) -> None:
        for pattern_id in decisions:
            await self.recompute(pattern_id, new_issue=True)


def _expiring(recurred: datetime | None) -> Build:
    def build(meta: Meta, current: Prediction | None) -> list[PredictionEvent]:
        return [] if current is None else decide.expire(current, meta, recurred)
    return build


def _generating(stream: UUID, pattern_id: str, forecast: model.Forecast) -> Build:
    def build(meta: Meta, current: Prediction | None) -> list[PredictionEvent]:
        return decide.generate(stream, meta, pattern_id, forecast) if current is None else []
    return build


def _updating(forecast: model.Forecast) -> Build:
    def build(meta: Meta, current: Prediction | None) -> list[PredictionEvent]:
        return [] if current is None else decide.update(current, meta, forecast)
    return build


def _probe_meta(rule: AlertRule, now: datetime) -> Meta:
    """Metadata for deciding on the cached rule whether a command is needed at all (most recomputes do not)."""
    return Meta(workspace_id=WorkspaceId(rule.workspace_id), actor=PREDICTOR_ACTOR, now=now)


async def run_prediction_worker(settings: Settings, stopping: asyncio.Event, *,
                                clock: Callable[[], datetime] = utc_now, tick_s: float = 60.0) -> None:
    """Stand by until elected, then predict until `stopping`; on failure start over (state rebuilt)."""
    def build(store: EventStore, committer: GroupCommitter, js: JetStreamContext) -> PredictionWorker:
        commands = PredictionCommands(CommandRunner(store, committer, clock=clock))
        return PredictionWorker(settings, store, commands, js, clock, tick_s)
    await run_elected(settings, stopping, "prediction-worker", build)
