"""Recommendation events (category `recommendation`, one stream per recommendation). Additive-only: never rename or
retype a field."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

import msgspec

from domain.events import DomainEvent
from domain.ids import IssueId, PatternId


class RecommendationStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    IMPLEMENTED = "implemented"
    DISMISSED = "dismissed"


class VerificationState(StrEnum):
    NONE = "none"
    WATCHING = "watching"
    VERIFIED = "verified"
    REOPENED = "reopened"


class RecommendationEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "recommendation"


class Step(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    description: str


class RecommendationCreated(RecommendationEvent, frozen=True, kw_only=True):
    """A fix proposed for a pattern from the knowledge base's playbook `playbook` (rank 1 = best for the pattern)."""

    pattern_id: PatternId
    playbook: str
    title: str
    fix_type: str
    """The contract's `type` (the event tag owns the name `type`)."""
    impact: str
    effort: str
    overview: str
    steps: list[Step]
    rank: int
    expected_loops_prevented: float


class RecommendationStatusChanged(RecommendationEvent, frozen=True, kw_only=True):
    from_status: RecommendationStatus
    to_status: RecommendationStatus


class RecommendationStepCompleted(RecommendationEvent, frozen=True, kw_only=True):
    """A step checked off (`completed` true) or unchecked (false)."""

    step_id: str
    completed: bool


class RecommendationDismissed(RecommendationEvent, frozen=True, kw_only=True):
    reason: str | None = None


class RecommendationVerificationStarted(RecommendationEvent, frozen=True, kw_only=True):
    """Implemented: the pattern is watched for `proof_window_days` from `watching_since`; `explanation` says why
    that long (the workspace's window, or longer when the pre-fix rate is too low to tell within it)."""

    pattern_id: PatternId
    proof_window_days: int
    watching_since: datetime
    pre_fix_rate_per_day: float
    explanation: str


class RecommendationVerified(RecommendationEvent, frozen=True, kw_only=True):
    """The proof window passed with no matching issue: the fix held (webhook/notification `recommendation.verified`)."""

    pattern_id: PatternId


class RecommendationReopened(RecommendationEvent, frozen=True, kw_only=True):
    """A matching issue arrived after the fix (during the window, or after verification): back to `in_progress`."""

    pattern_id: PatternId
    issue_id: IssueId


class RecommendationPushed(RecommendationEvent, frozen=True, kw_only=True):
    """A ticket was created for the recommendation in an issue tracker, through the workspace's connector
    `connector_id`: `project` is the Jira project key or the GitHub `owner/repo`."""

    tracker: str
    project: str
    connector_id: str
    ticket_key: str
    ticket_url: str


AnyRecommendationEvent = (RecommendationCreated | RecommendationStatusChanged | RecommendationStepCompleted
                          | RecommendationDismissed | RecommendationVerificationStarted | RecommendationVerified
                          | RecommendationReopened | RecommendationPushed)
RECOMMENDATION_EVENT_TYPES: tuple[type[RecommendationEvent], ...] = (
    RecommendationCreated, RecommendationStatusChanged, RecommendationStepCompleted, RecommendationDismissed,
    RecommendationVerificationStarted, RecommendationVerified, RecommendationReopened, RecommendationPushed,
)
