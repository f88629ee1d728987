"""Which domain events become which public webhook event types: ONE table, easy to extend.

Live: issue.created/updated/resolved (issues), pattern.detected/updated (patterns), recommendation.created/verified
(recommendations), sync.succeeded/failed (connectors). Not yet: issue.ingested, prediction.generated,
prediction.alert.fired (their events come with their own slices: add one line per event class to `RULES`).
docs/events.md, "Outbound webhooks", lists what is live and why each event maps as it does.
"""

from __future__ import annotations

from collections.abc import Callable

from domain.connectors.events import ConnectorEvent, ConnectorSynced, ConnectorSyncFailed
from domain.events import DomainEvent
from domain.ids import render
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


RULES: dict[type[DomainEvent], Rule] = {
    IssueOpened: always("issue.created"),
    IssueDetailsEdited: always("issue.updated"),
    IssueAssigned: always("issue.updated"),
    IssueStatusChanged: _status_changed,
    IssueClosed: _closed,
    IssueReopened: always("issue.updated"),
    PatternDetected: always("pattern.detected"),
    PatternUpdated: always("pattern.updated"),
    PatternMerged: always("pattern.updated"),
    IssueLinkedToPattern: _linked,
    IssueUnlinkedFromPattern: _unlinked,
    RecommendationCreated: always("recommendation.created"),
    RecommendationVerified: always("recommendation.verified"),
    ConnectorSynced: always("sync.succeeded"),
    ConnectorSyncFailed: always("sync.failed"),
}
"""Event class -> the public types it is delivered as (in this order)."""

LIVE_TYPES = frozenset({"issue.created", "issue.updated", "issue.resolved", "pattern.detected", "pattern.updated",
                        "recommendation.created", "recommendation.verified", "sync.succeeded", "sync.failed"})
NOT_YET_LIVE = frozenset({"issue.ingested", "prediction.generated", "prediction.alert.fired"})
"""Documented types whose events come with slices not merged yet: an endpoint may subscribe, nothing is sent."""

WITHHELD: dict[type[DomainEvent], frozenset[str]] = {ConnectorSynced: frozenset({"cursor"})}
"""Event fields left out of a delivery's `data`: the sync cursor is the provider's opaque mark (ETags, page
tokens), meaningful only to the sync worker."""


def public_types(event: DomainEvent) -> tuple[str, ...]:
    rule = RULES.get(type(event))
    return () if rule is None else rule(event)


def connector_of(event: DomainEvent) -> str | None:
    """The connector an event came through, for endpoints that filter on one: a connector's own events (its
    stream is the connector), else a `connector_id` in the event's data; None for events without one."""
    if isinstance(event, ConnectorEvent):
        return render("con", event.originator_id)
    value = getattr(event, "connector_id", None)
    return value if isinstance(value, str) else None
