"""Which domain events become which public webhook event types: ONE table, easy to extend.

Live today: issue.created, issue.updated, issue.resolved (the issues slice). The other documented types
(issue.ingested, pattern.*, prediction.*, recommendation.*, sync.*) go live when their events exist: add one
line per event class to `RULES` (docs/events.md, "Outbound webhooks", lists what is live).
"""

from __future__ import annotations

from collections.abc import Callable

from domain.events import DomainEvent
from domain.issues.events import (
    IssueAssigned,
    IssueClosed,
    IssueDetailsEdited,
    IssueOpened,
    IssueReopened,
    IssueStatusChanged,
    Status,
)

Rule = Callable[[DomainEvent], tuple[str, ...]]
_RESOLVED = (Status.RESOLVED, Status.CLOSED)


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


RULES: dict[type[DomainEvent], Rule] = {
    IssueOpened: always("issue.created"),
    IssueDetailsEdited: always("issue.updated"),
    IssueAssigned: always("issue.updated"),
    IssueStatusChanged: _status_changed,
    IssueClosed: _closed,
    IssueReopened: always("issue.updated"),
}
"""Event class -> the public types it is delivered as (in this order)."""

LIVE_TYPES = frozenset({"issue.created", "issue.updated", "issue.resolved"})


def public_types(event: DomainEvent) -> tuple[str, ...]:
    rule = RULES.get(type(event))
    return () if rule is None else rule(event)


def connector_of(event: DomainEvent) -> str | None:
    """The connector an event came through, for endpoints that filter on one (events without one: None)."""
    value = getattr(event, "connector_id", None)
    return value if isinstance(value, str) else None
