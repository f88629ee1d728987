"""Request and response bodies of pattern watching and notification preferences."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from api.core.input_policy import RequestBody
from domain.notifications import preferences as prefs


class MinSeverity(StrEnum):
    P1 = "p1"
    P2 = "p2"
    P3 = "p3"
    P4 = "p4"


class Digest(StrEnum):
    REALTIME = "realtime"
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"


class EventChannelsBody(RequestBody, kw_only=True):
    in_app: bool = True
    email: bool = False
    slack: bool = False
    teams: bool = False
    pagerduty: bool = False


def _channels() -> EventChannelsBody:
    return EventChannelsBody()


class EventsBody(RequestBody, kw_only=True):
    """One entry per notification type; a type left out gets the defaults (in-app only)."""

    issue_created: EventChannelsBody = msgspec.field(name="issue.created", default_factory=_channels)
    pattern_updated: EventChannelsBody = msgspec.field(name="pattern.updated", default_factory=_channels)
    prediction_alert_fired: EventChannelsBody = msgspec.field(name="prediction.alert.fired", default_factory=_channels)
    recommendation_created: EventChannelsBody = msgspec.field(name="recommendation.created", default_factory=_channels)


Url = Annotated[str, msgspec.Meta(max_length=2048)]


class ChannelsBody(RequestBody, kw_only=True):
    """Secrets are write-only: leave one out (or send back the masked value you were shown) to keep it, null to
    remove it."""

    email: bool = False
    slack_webhook_url: Url | None | msgspec.UnsetType = msgspec.UNSET
    """https://hooks.slack.com/…"""
    teams_webhook_url: Url | None | msgspec.UnsetType = msgspec.UNSET
    """https://<tenant>.webhook.office.com/…"""
    pagerduty_integration_key: Annotated[str, msgspec.Meta(max_length=64)] | None | msgspec.UnsetType = (
        msgspec.UNSET)
    """32 letters and digits."""


class PutPreferencesRequest(RequestBody, kw_only=True):
    """The whole document: a field left out takes its default (secrets excepted, see `channels`)."""

    channels: ChannelsBody = msgspec.field(default_factory=ChannelsBody)
    min_severity: MinSeverity = MinSeverity.P2
    min_risk_score: Annotated[int, msgspec.Meta(ge=0, le=100)] = prefs.DEFAULT_MIN_RISK_SCORE
    digest: Digest = Digest.REALTIME
    events: EventsBody = msgspec.field(default_factory=EventsBody)

    def by_type(self) -> dict[str, EventChannelsBody]:
        return {name: getattr(self.events, field) for field, name in _EVENT_NAMES.items()}


_EVENT_NAMES = {field.name: field.encode_name for field in msgspec.structs.fields(EventsBody)}


class ChannelsView(msgspec.Struct, kw_only=True):
    email: bool
    slack_webhook_url: str | None
    """Masked: `****` and the last four characters, or null when none is set."""
    teams_webhook_url: str | None
    pagerduty_integration_key: str | None


class EventChannelsView(msgspec.Struct, kw_only=True):
    in_app: bool
    email: bool
    slack: bool
    teams: bool = False
    pagerduty: bool = False
    """False in preferences stored before Teams and PagerDuty had per-type switches."""


class PreferencesView(msgspec.Struct, kw_only=True):
    channels: ChannelsView
    min_severity: str
    min_risk_score: int
    digest: str
    events: dict[str, EventChannelsView]
    updated_at: datetime | None
    """Null while the defaults apply (never set)."""
