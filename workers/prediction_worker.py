"""The prediction worker: keeps, for every active or emerging pattern, P(recurs within W days) for W in 7/30/90,
resolves each prediction when the pattern recurs or its window ends, and fires alert rules once per crossing.

Like the pattern detector it has its own durable JetStream consumer (created before it reads the event store, with
DeliverPolicy.NEW, so nothing published meanwhile is missed) and rebuilds its state from the event store at start.
It recomputes a pattern on each IssueLinkedToPattern, and every pattern on a schedule (`tick_s`); the clock is
injectable, so a test decides what "now" is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

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
from commands.predictions import PREDICTOR_ACTOR, PredictionCommands, prediction_stream
from commands.runner import CommandRunner, Result
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
from workers import leadership

log = logging.getLogger(__name__)

DURABLE = "prediction-worker-v1"
BATCH = 200
FETCH_TIMEOUT_S = 0.5
READ_PAGE = 2_000
CATEGORIES = frozenset({"pattern", "prediction", "alert_rule"})
ELIGIBLE = frozenset({PatternStatus.EMERGING, PatternStatus.ACTIVE})
MIN_CHANGE = 0.005
"""A scheduled recompute records an update only when the probability moved at least this much."""


Build = Callable[[Meta, Prediction | None], list[PredictionEvent]]


def utc_now() -> datetime:
    return datetime.now(UTC)


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


class PredictionWorker:
    def __init__(self, settings: Settings, store: EventStore, commands: PredictionCommands,
                 js: JetStreamContext | None, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.store = store
        self.commands = commands
        self.js = js
        self.clock = clock
        self.state = State()
        self.position = 0
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

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        assert self.js is not None
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(self.settings.nats_stream, DURABLE)
        config = ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.ALL, ack_wait=30, max_deliver=-1,
                                max_ack_pending=BATCH * 4, deliver_policy=DeliverPolicy.NEW,
                                filter_subject=f"{self.settings.subject_prefix}.>")
        await self.js.add_consumer(self.settings.nats_stream, config)
        return await self.js.pull_subscribe_bind(DURABLE, stream=self.settings.nats_stream)

    async def catch_up(self) -> None:
        while True:
            page = await asyncio.to_thread(self.store.read, self.position, READ_PAGE)
            if not page:
                break
            for _, event in page:
                if event.category in CATEGORIES:
                    self.state.observe(event)
            self.position = page[-1][0]

    async def run(self, stopping: asyncio.Event, tick_s: float) -> None:
        sub = await self.subscribe()
        await self.catch_up()
        await self.tick()
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + tick_s
        while not stopping.is_set():
            messages = await fetch_batch(sub, BATCH, FETCH_TIMEOUT_S)
            touched: list[str] = []
            for msg in messages:
                category = msg.subject.rsplit(".", 2)[1] if msg.subject.count(".") >= 2 else None
                if category not in CATEGORIES:
                    continue
                try:
                    position, event = codec.from_public(msg.data)
                except (codec.MalformedEvent, codec.UnknownEventType):
                    log.exception("prediction worker: skipping an undecodable message %s", msg.subject)
                    continue
                if position <= self.position:
                    continue
                self.position = position
                pattern_id = self.state.observe(event)
                if pattern_id is not None and pattern_id not in touched:
                    touched.append(pattern_id)
            for pattern_id in touched:
                await self.recompute(pattern_id, new_issue=True)
            if messages:
                await max(messages, key=lambda msg: msg.metadata.sequence.consumer).ack()
            if loop.time() >= next_tick:
                await self.tick()
                next_tick = loop.time() + tick_s
        await sub.unsubscribe()


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
    while not stopping.is_set():
        lock = await leadership.acquire_all(settings, ["prediction-worker"], stopping)
        if lock is None:
            return
        try:
            await _lead(settings, stopping, clock, tick_s)
        except Exception:
            log.exception("prediction worker failed; restarting")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)
        finally:
            await lock.close()


async def _lead(settings: Settings, stopping: asyncio.Event, clock: Callable[[], datetime], tick_s: float) -> None:
    nc: Client = await nats_connect(settings, name="causeloop-prediction-worker")
    store = EventStore(settings, pool_size=2)
    committer = GroupCommitter(store)
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings)
        runner = CommandRunner(store, committer, clock=clock)
        worker = PredictionWorker(settings, store, PredictionCommands(runner), js, clock)
        await worker.run(stopping, tick_s)
    finally:
        committer.close()
        store.close()
        await nc.drain()
