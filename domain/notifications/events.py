"""Watch and preference events. Additive-only: never rename or retype a field."""

from __future__ import annotations

from typing import ClassVar

import msgspec

from domain.events import DomainEvent
from domain.predictions.events import NotificationEvent


class PatternWatchEvent(DomainEvent, frozen=True, kw_only=True):
    """One user's watch of one pattern (a stream per pattern and user: `pwt_`)."""

    category: ClassVar[str] = "pattern_watch"


class PatternWatched(PatternWatchEvent, frozen=True, kw_only=True):
    """The user gets a `pattern.updated` notification each time the pattern is renamed, retagged, changes status
    or is merged."""

    user_id: str
    pattern_id: str


class PatternUnwatched(PatternWatchEvent, frozen=True, kw_only=True):
    user_id: str
    pattern_id: str


class EventChannels(msgspec.Struct, frozen=True, kw_only=True):
    """Where one notification type goes: the in-app feed, e-mail, Slack, Microsoft Teams, PagerDuty (the last two
    added later: absent from older events, so off)."""

    in_app: bool = True
    email: bool = False
    slack: bool = False
    teams: bool = False
    pagerduty: bool = False


class NotificationPreferencesSet(NotificationEvent, frozen=True, kw_only=True):
    """The user's whole notification preferences in one workspace (a PUT replaces them all). Channel secrets are
    sealed with the master key (`*_ciphertext`, owner: workspace, user and channel); `*_hint` keeps their last four
    characters, the only part ever shown again."""

    user_id: str
    email: bool
    slack_webhook_ciphertext: str | None = None
    slack_webhook_hint: str | None = None
    teams_webhook_ciphertext: str | None = None
    teams_webhook_hint: str | None = None
    pagerduty_key_ciphertext: str | None = None
    pagerduty_key_hint: str | None = None
    min_severity: str
    """`p1` (critical) … `p4` (low)."""
    min_risk_score: int
    digest: str
    events: dict[str, EventChannels] = msgspec.field(default_factory=dict)


AnyPatternWatchEvent = PatternWatched | PatternUnwatched
AnyNotificationSettingsEvent = AnyPatternWatchEvent | NotificationPreferencesSet
WATCH_EVENT_TYPES: tuple[type[DomainEvent], ...] = (PatternWatched, PatternUnwatched, NotificationPreferencesSet)
