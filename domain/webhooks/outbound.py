"""Which domain events become which public webhook event types: ONE table, easy to extend.

Every documented type is live: issue.* (issues and ingestion), pattern.* (patterns), prediction.* (predictions and
alert rules), recommendation.* (recommendations), sync.* (connectors). Another type, or another event behind one:
one line per event class in `RULES`. docs/events.md, "Outbound webhooks", lists why each event maps as it does.
"""

from __future__ import annotations

from collections.abc import Callable

from domain.connectors.events import ConnectorEvent, ConnectorSynced, ConnectorSyncFailed
from domain.events import DomainEvent
from domain.ids import render
from domain.ingestion.events import IngestionJobCompleted, folded_job
from domain.issues.events import (
    IssueAssigned,
    IssueClosed,
    IssueDetailsEdited,
    IssueOpened,
    IssueReopened,
    IssueStatusChanged,
    Status,
)
from domain.patterns.events import (
    IssueLinkedToPattern,
    IssueUnlinkedFromPattern,
    PatternDetected,
    PatternMerged,
    PatternUpdated,
)
from domain.predictions.events import AlertFired, PredictionGenerated
from domain.recommendations.events import RecommendationCreated, RecommendationVerified

Rule = Callable[[DomainEvent], tuple[str, ...]]
_RESOLVED = (Status.RESOLVED, Status.CLOSED)
FOUNDING_METHOD = "new"
"""`IssueLinkedToPattern.method` of a detected pattern's founding issue (its link follows PatternDetected)."""
MERGED_REASON = "merged"
"""`IssueUnlinkedFromPattern.reason` of the issues a merge moves (PatternMerged reports the merge once)."""


def always(*types: str) -> Rule:
    return lambda event: types


def _status_changed(event: DomainEvent) -> tuple[str, ...]:
    """Entering resolved or closed from an open status is a resolution; resolved → closed is only an update."""
    assert isinstance(event, IssueStatusChanged)
    resolves = event.to_status in _RESOLVED and event.from_status not in _RESOLVED
    return ("issue.updated", "issue.resolved") if resolves else ("issue.updated",)


def _closed(event: DomainEvent) -> tuple[str, ...]:
    assert isinstance(event, IssueClosed)
    return ("issue.updated",) if event.from_status in _RESOLVED else ("issue.updated", "issue.resolved")


def _linked(event: DomainEvent) -> tuple[str, ...]:
    """A member joined: an update, except the founding issue (part of the detection that precedes it)."""
    assert isinstance(event, IssueLinkedToPattern)
    return () if event.method == FOUNDING_METHOD else ("pattern.updated",)


def _unlinked(event: DomainEvent) -> tuple[str, ...]:
    """A member left: an update, except the moves of a merge (one `PatternMerged` says it for all of them)."""
    assert isinstance(event, IssueUnlinkedFromPattern)
    return () if event.reason == MERGED_REASON else ("pattern.updated",)


def _ingested(event: DomainEvent) -> tuple[str, ...]:
    """A push that accepted at least one record (its `issues`, outcome per record); one that only rejected
    ingested nothing."""
    assert isinstance(event, IngestionJobCompleted)
    return ("issue.ingested",) if event.issues else ()


RULES: dict[type[DomainEvent], Rule] = {
    IssueOpened: always("issue.created"),
    IssueDetailsEdited: always("issue.updated"),
    IssueAssigned: always("issue.updated"),
    IssueStatusChanged: _status_changed,
    IssueClosed: _closed,
    IssueReopened: always("issue.updated"),
    IngestionJobCompleted: _ingested,
    PatternDetected: always("pattern.detected"),
    PatternUpdated: always("pattern.updated"),
    PatternMerged: always("pattern.updated"),
    IssueLinkedToPattern: _linked,
    IssueUnlinkedFromPattern: _unlinked,
    RecommendationCreated: always("recommendation.created"),
    RecommendationVerified: always("recommendation.verified"),
    PredictionGenerated: always("prediction.generated"),
    AlertFired: always("prediction.alert.fired"),
    ConnectorSynced: always("sync.succeeded"),
    ConnectorSyncFailed: always("sync.failed"),
}
"""Event class -> the public types it is delivered as (in this order)."""

LIVE_TYPES = frozenset({"issue.ingested", "issue.created", "issue.updated", "issue.resolved", "pattern.detected",
                        "pattern.updated", "prediction.generated", "prediction.alert.fired", "recommendation.created",
                        "recommendation.verified", "sync.succeeded", "sync.failed"})
NOT_YET_LIVE: frozenset[str] = frozenset()
"""Documented types no event is delivered as yet (an endpoint may subscribe; nothing is sent): none today."""

WITHHELD: dict[type[DomainEvent], frozenset[str]] = {ConnectorSynced: frozenset({"cursor"})}
"""Event fields left out of a delivery's `data`: the sync cursor is the provider's opaque mark (ETags, page
tokens), meaningful only to the sync worker."""


def public_types(event: DomainEvent) -> tuple[str, ...]:
    rule = RULES.get(type(event))
    return () if rule is None else rule(event)


def delivered_as(event: DomainEvent) -> list[tuple[DomainEvent, str]]:
    """Each public type `event` is delivered as, with the event whose data the delivery carries: its own, and for
    an issue event that records a one-signal push's job (`ingested_by`), that job as `issue.ingested` after it, as
    if the job's `IngestionJobCompleted` had followed it (same webhook event id, same data)."""
    pairs = [(event, public_type) for public_type in public_types(event)]
    job = folded_job(event)
    if job is not None:
        pairs.extend((job, public_type) for public_type in public_types(job))
    return pairs


def connector_of(event: DomainEvent) -> str | None:
    """The connector an event came through, for endpoints that filter on one: a connector's own events (its
    stream is the connector), else a `connector_id` in the event's data; None for events without one."""
    if isinstance(event, ConnectorEvent):
        return render("con", event.originator_id)
    value = getattr(event, "connector_id", None)
    return value if isinstance(value, str) else None
