"""Issue events: the facts recorded about an issue's life. Additive-only: never rename or retype a field."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

import msgspec

from domain.events import DomainEvent
from domain.ids import CommentId, PatternId, UserId

Metadata = dict[str, object]


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Status(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Stage(StrEnum):
    NEW = "new"
    ANALYZING = "analyzing"
    ANALYZED = "analyzed"
    PATTERN_FOUND = "pattern_found"
    IN_LOOP = "in_loop"


class IssueEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "issue"


class IngestedBy(msgspec.Struct, frozen=True, kw_only=True):
    """The one-signal ingestion job this event records: a push of one record that opens or changes its issue
    appends this event alone, not also an `IngestionJobCompleted` (docs/decisions/014). Enough to tell the job
    as that event would have: its id, kind, path source and connector, and the record's source and key."""

    job_id: str
    kind: str
    record_source: str
    external_id: str | None = None
    source: str | None = None
    connector_id: str | None = None


class IssueOpened(IssueEvent, frozen=True, kw_only=True):
    title: str
    body: str | None = None
    severity: Severity = Severity.MEDIUM
    source: str = "manual"
    external_id: str | None = None
    team: str | None = None
    assignee_id: UserId | None = None
    external_url: str | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)
    source_created_at: datetime | None = None
    ingested_by: IngestedBy | msgspec.UnsetType = msgspec.UNSET
    """Set when a one-signal ingestion push opened the issue (absent otherwise)."""


class IssueDetailsEdited(IssueEvent, frozen=True, kw_only=True):
    """Only the fields that changed are present."""

    title: str | msgspec.UnsetType = msgspec.UNSET
    body: str | msgspec.UnsetType | None = msgspec.UNSET
    severity: Severity | msgspec.UnsetType = msgspec.UNSET
    team: str | msgspec.UnsetType | None = msgspec.UNSET
    external_url: str | msgspec.UnsetType | None = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET
    ingested_by: IngestedBy | msgspec.UnsetType = msgspec.UNSET
    """Set when a one-signal ingestion push made the change (absent otherwise)."""


class IssueAssigned(IssueEvent, frozen=True, kw_only=True):
    assignee_id: UserId | None


class IssueStatusChanged(IssueEvent, frozen=True, kw_only=True):
    from_status: Status
    to_status: Status


class IssueClosed(IssueEvent, frozen=True, kw_only=True):
    from_status: Status


class IssueReopened(IssueEvent, frozen=True, kw_only=True):
    from_status: Status


class IssueCommented(IssueEvent, frozen=True, kw_only=True):
    comment_id: CommentId
    body: str


class IssuePatternLinked(IssueEvent, frozen=True, kw_only=True):
    pattern_id: PatternId


class IssuePatternUnlinked(IssueEvent, frozen=True, kw_only=True):
    pattern_id: PatternId


class IssueAnalyzed(IssueEvent, frozen=True, kw_only=True):
    """The pattern detector's analysis of the issue: its stage, risk and why (appended with each pattern link)."""

    stage: Stage
    risk_score: int
    root_cause: str | None = None
    contributing_factors: list[str] = msgspec.field(default_factory=list)
    confidence: float | None = None
    model: str | None = None


class IssueReanalysisStarted(IssueEvent, frozen=True, kw_only=True):
    """Someone asked for the issue to be analyzed again (`POST /v1/issues/{id}/reanalyze`): its stage is
    `analyzing` until the pattern detector records its answer (an `IssueAnalyzed`, with a new link if it moved)."""

    tier: str


AnyIssueEvent = (
    IssueOpened
    | IssueDetailsEdited
    | IssueAssigned
    | IssueStatusChanged
    | IssueClosed
    | IssueReopened
    | IssueCommented
    | IssuePatternLinked
    | IssuePatternUnlinked
    | IssueAnalyzed
    | IssueReanalysisStarted
)
ISSUE_EVENT_TYPES: tuple[type[IssueEvent], ...] = (
    IssueOpened, IssueDetailsEdited, IssueAssigned, IssueStatusChanged, IssueClosed,
    IssueReopened, IssueCommented, IssuePatternLinked, IssuePatternUnlinked, IssueAnalyzed, IssueReanalysisStarted,
)
