"""Pattern events: what the detector decided and what users changed. Additive-only: never rename or retype a field."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

import msgspec

from domain.events import DomainEvent
from domain.ids import IssueId, PatternId


class PatternStatus(StrEnum):
    EMERGING = "emerging"
    ACTIVE = "active"
    MITIGATING = "mitigating"
    WATCHING = "watching"
    RESOLVED = "resolved"


class PatternEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "pattern"


class Fingerprint(msgspec.Struct, frozen=True, kw_only=True):
    """What a pattern's issues share: the contract's `fingerprint` object (`hash` is the grouping digest)."""

    domain: str | None = None
    service: str | None = None
    component: str | None = None
    error_signature: str
    hash: str


class PatternDetected(PatternEvent, frozen=True, kw_only=True):
    """A new pattern, founded by one issue (its first member follows as IssueLinkedToPattern), or created by a
    user (`POST /v1/patterns`: no founding issue; `grouping_key` names its stream)."""

    name: str
    fingerprint: Fingerprint
    template: str
    founding_issue_id: IssueId | None
    grouping_version: int = 1
    grouping_key: str | None = None
    """The key the pattern's stream id is derived from; None means the founding issue's id."""
    initial_risk_score: int | None = None
    """Given at creation by a user: shown until the pattern has members (then computed)."""
    initial_confidence: float | None = None


class IssueLinkedToPattern(PatternEvent, frozen=True, kw_only=True):
    """An issue joined the pattern, and why: `method` is the grouping step that matched, `similarity` its score."""

    issue_id: IssueId
    method: str
    similarity: float
    fingerprint: str
    severity: str
    service: str | None = None
    issue_opened_at: datetime
    suggested_pattern_id: PatternId | None = None
    """A close pattern in the middle band (not auto-attached): a merge a user may confirm."""
    suggested_similarity: float | None = None
    similar: list[tuple[IssueId, float]] = msgspec.field(default_factory=list)
    """The most similar earlier issues when the issue was analyzed: (issue id, similarity 0–1), best first."""


class IssueUnlinkedFromPattern(PatternEvent, frozen=True, kw_only=True):
    issue_id: IssueId
    reason: str
    """`unlinked` (a user: a cannot-link the detector respects) or `merged` (moved to the target pattern)."""


class PatternUpdated(PatternEvent, frozen=True, kw_only=True):
    """Only the fields that changed are present."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    status: PatternStatus | msgspec.UnsetType = msgspec.UNSET
    tags: list[str] | msgspec.UnsetType = msgspec.UNSET
    template: str | msgspec.UnsetType = msgspec.UNSET


class PatternMerged(PatternEvent, frozen=True, kw_only=True):
    """This pattern was merged into another (a must-link the detector remembers); its issues moved there."""

    into_pattern_id: PatternId


class IssueReanalysisRequested(PatternEvent, frozen=True, kw_only=True):
    """A user asked to run the grouping again for one issue (a stream of its own per issue): the detector
    re-groups it with what it knows now, and moves it only if the answer changed."""

    issue_id: IssueId
    tier: str = "balanced"


AnyPatternAggregateEvent = (PatternDetected | IssueLinkedToPattern | IssueUnlinkedFromPattern | PatternUpdated
                            | PatternMerged)
AnyPatternEvent = AnyPatternAggregateEvent | IssueReanalysisRequested
PATTERN_EVENT_TYPES: tuple[type[PatternEvent], ...] = (
    PatternDetected, IssueLinkedToPattern, IssueUnlinkedFromPattern, PatternUpdated, PatternMerged,
    IssueReanalysisRequested,
)
