"""The recommendation worker's state, folded from pattern, settings, prediction and recommendation events (pure: a
replay of the same events gives the same decisions; a pattern's latest predicted rate sizes its proposals'
`expected_loops_prevented`).

It proposes fixes for a pattern once the pattern recurs (`active`: two issues or more) and its confidence (the mean
similarity of its members' links, as the patterns read model computes it) reaches the workspace's confidence
threshold; it reopens a recommendation when a matching issue links to its pattern after the fix; it answers which
watching recommendations are due at a given time (the clock is the caller's).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

import msgspec

from domain.ids import IssueId, PatternId, WorkspaceId, render
from domain.patterns.events import (
    IssueLinkedToPattern,
    IssueUnlinkedFromPattern,
    PatternDetected,
    PatternMerged,
    PatternStatus,
    PatternUpdated,
)
from domain.patterns.grouping import MatchMethod
from domain.predictions.events import PredictionGenerated, PredictionUpdated
from domain.recommendations import recommendation as rules
from domain.recommendations.events import RecommendationCreated, RecommendationEvent
from domain.recommendations.knowledge import PatternFacts, Proposal, match
from domain.workspace_settings.events import AiSettingsUpdated
from domain.workspace_settings.settings import AiSettings

DEFAULT_THRESHOLD = AiSettings().confidence_threshold
"""Used until a workspace changes its `confidence_threshold` (settings → AI)."""


class Propose(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: WorkspaceId
    pattern_id: PatternId
    proposals: list[Proposal]


class Reopen(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: WorkspaceId
    recommendation_id: UUID
    issue_id: IssueId
    opened_at: datetime


class _Link(msgspec.Struct, frozen=True):
    opened_at: datetime
    similarity: float


class TrackedPattern(msgspec.Struct, kw_only=True):
    workspace_id: WorkspaceId
    domain: str | None
    service: str | None
    component: str | None
    error_signature: str
    template: str
    status: PatternStatus = PatternStatus.EMERGING
    links: dict[str, _Link] = msgspec.field(default_factory=dict)
    merged: bool = False
    proposed: bool = False
    predicted_rate: float | None = None

    def facts(self) -> PatternFacts:
        opened = [link.opened_at for link in self.links.values()]
        return PatternFacts(domain=self.domain, service=self.service, component=self.component,
                            error_signature=self.error_signature, template=self.template,
                            issue_count=len(self.links), first_seen_at=min(opened, default=None),
                            last_seen_at=max(opened, default=None), predicted_rate_per_day=self.predicted_rate)

    @property
    def confidence(self) -> float:
        return sum(link.similarity for link in self.links.values()) / len(self.links) if self.links else 0.0


def facts_of(history: Iterable[object]) -> PatternFacts | None:
    """A pattern's facts from its own stream (the implement command uses it for the pre-fix rate)."""
    tracker = Recommender()
    pattern_id = None
    for event in history:
        tracker.observe(event)
        if isinstance(event, PatternDetected):
            pattern_id = render("pat", event.originator_id)
    tracked = tracker.patterns.get(pattern_id) if pattern_id else None
    return None if tracked is None else tracked.facts()


class Recommender:
    def __init__(self) -> None:
        self.patterns: dict[str, TrackedPattern] = {}
        self.thresholds: dict[str, float] = {}
        self.recommendations: dict[UUID, rules.Recommendation] = {}
        self.by_pattern: dict[str, set[UUID]] = {}
        self.predicted: dict[UUID, str] = {}
        """Each prediction's pattern: an update names only its prediction."""

    def threshold(self, workspace_id: str) -> float:
        return self.thresholds.get(workspace_id, DEFAULT_THRESHOLD)

    def observe(self, event: object) -> list[Propose | Reopen]:
        """Fold one event; answer what to do about it."""
        match event:
            case PatternDetected():
                fp = event.fingerprint
                self.patterns[render("pat", event.originator_id)] = TrackedPattern(
                    workspace_id=event.workspace_id, domain=fp.domain, service=fp.service, component=fp.component,
                    error_signature=fp.error_signature, template=event.template)
            case IssueLinkedToPattern():
                pattern_id = render("pat", event.originator_id)
                tracked = self.patterns.get(pattern_id)
                if tracked is not None:
                    tracked.links[event.issue_id] = _Link(event.issue_opened_at, event.similarity)
                    if tracked.status == PatternStatus.EMERGING and len(tracked.links) >= 2:
                        tracked.status = PatternStatus.ACTIVE
                    return [*self._reopens(pattern_id, event), *self._propose(pattern_id)]
            case IssueUnlinkedFromPattern():
                tracked = self.patterns.get(render("pat", event.originator_id))
                if tracked is not None:
                    tracked.links.pop(event.issue_id, None)
            case PatternUpdated():
                pattern_id = render("pat", event.originator_id)
                tracked = self.patterns.get(pattern_id)
                if tracked is not None:
                    if event.status is not msgspec.UNSET:
                        tracked.status = event.status
                    if event.template is not msgspec.UNSET:
                        tracked.template = event.template
                    return self._propose(pattern_id)
            case PatternMerged():
                tracked = self.patterns.get(render("pat", event.originator_id))
                if tracked is not None:
                    tracked.merged = True
            case AiSettingsUpdated():
                if event.confidence_threshold is not msgspec.UNSET:
                    self.thresholds[event.workspace_id] = event.confidence_threshold
                    return [decision for pattern_id, tracked in self.patterns.items()
                            if tracked.workspace_id == event.workspace_id
                            for decision in self._propose(pattern_id)]
            case PredictionGenerated():
                self.predicted[event.originator_id] = event.pattern_id
                self._predicted_rate(event.pattern_id, event.rate_per_day)
            case PredictionUpdated():
                self._predicted_rate(self.predicted.get(event.originator_id), event.rate_per_day)
            case RecommendationEvent():
                self._recommendation(event)
            case _:
                pass
        return []

    def _predicted_rate(self, pattern_id: str | None, rate: float) -> None:
        tracked = self.patterns.get(pattern_id) if pattern_id else None
        if tracked is not None:
            tracked.predicted_rate = rate

    def _recommendation(self, event: RecommendationEvent) -> None:
        current = self.recommendations.get(event.originator_id)
        if current is None and not isinstance(event, RecommendationCreated):
            return
        if current is not None and event.originator_version <= current.version:
            return  # already folded (the worker folds its own commands' events before their echo arrives)
        state = rules.evolve(current, event)  # type: ignore[arg-type]
        self.recommendations[event.originator_id] = state
        self.by_pattern.setdefault(state.pattern_id, set()).add(state.id)
        tracked = self.patterns.get(state.pattern_id)
        if tracked is not None:
            tracked.proposed = True

    def _propose(self, pattern_id: str) -> list[Propose | Reopen]:
        tracked = self.patterns[pattern_id]
        if (tracked.proposed or tracked.merged or tracked.status == PatternStatus.EMERGING
                or len(tracked.links) < 2 or tracked.confidence < self.threshold(tracked.workspace_id)):
            return []
        tracked.proposed = True
        return [Propose(workspace_id=tracked.workspace_id, pattern_id=PatternId(pattern_id),
                        proposals=match(tracked.facts()))]

    def _reopens(self, pattern_id: str, event: IssueLinkedToPattern) -> list[Propose | Reopen]:
        found: list[Propose | Reopen] = []
        for recommendation_id in sorted(self.by_pattern.get(pattern_id, ())):
            state = self.recommendations[recommendation_id]
            if event.method != MatchMethod.MERGE.value and rules.reopens(state, event.issue_opened_at):
                found.append(Reopen(workspace_id=state.workspace_id, recommendation_id=recommendation_id,
                                    issue_id=event.issue_id, opened_at=event.issue_opened_at))
        return found

    def due(self, now: datetime) -> list[rules.Recommendation]:
        """The watching recommendations whose proof window has passed at `now`."""
        return [state for state in self.recommendations.values() if rules.due(state, now)]
