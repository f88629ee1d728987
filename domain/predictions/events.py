"""Prediction, alert-rule and notification events. Additive-only: never rename or retype a field."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec

from domain.events import DomainEvent


class PredictionEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "prediction"


class PredictionGenerated(PredictionEvent, frozen=True, kw_only=True):
    """The prediction worker's forecast for one pattern and window, from `predicted_at` until `expires_at`. Its
    `probability` is the one scored when the prediction resolves (later updates do not rewrite it)."""

    pattern_id: str
    window_days: int
    probability: float
    predicted_at: datetime
    expires_at: datetime
    likely_trigger: str
    impact: str
    explanation: str
    model_version: str
    rate_per_day: float
    sample_size: int
    last_seen_at: datetime


class PredictionUpdated(PredictionEvent, frozen=True, kw_only=True):
    """A recompute (a new issue of the pattern, or the schedule) changed the current probability."""

    probability: float
    impact: str
    explanation: str
    model_version: str
    rate_per_day: float
    sample_size: int
    last_seen_at: datetime


class PredictionExpired(PredictionEvent, frozen=True, kw_only=True):
    """The prediction resolved: the pattern recurred inside its window (`recurred`, at `recurred_at`), or the
    window ended without it. `probability` is the generated one, the figure accuracy scores."""

    recurred: bool
    recurred_at: datetime | None = None
    probability: float


class PredictionDismissed(PredictionEvent, frozen=True, kw_only=True):
    reason: str | None = None


class PredictionFeedbackGiven(PredictionEvent, frozen=True, kw_only=True):
    outcome: str
    """`accurate` or `inaccurate`."""
    comment: str | None = None


class AlertThreshold(msgspec.Struct, frozen=True, kw_only=True):
    probability: float
    window_days: int


class AlertRuleEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "alert_rule"


class AlertRuleCreated(AlertRuleEvent, frozen=True, kw_only=True):
    name: str
    scope: str
    """`global`, or a pattern id: the predictions the rule watches."""
    threshold: AlertThreshold
    channels: list[str] = msgspec.field(default_factory=list)
    enabled: bool = True
    snoozed_until: datetime | None = None


class AlertRuleUpdated(AlertRuleEvent, frozen=True, kw_only=True):
    """Only the fields that changed are present (`snoozed_until` may be set to null)."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    scope: str | msgspec.UnsetType = msgspec.UNSET
    threshold: AlertThreshold | msgspec.UnsetType = msgspec.UNSET
    channels: list[str] | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    snoozed_until: datetime | None | msgspec.UnsetType = msgspec.UNSET


class AlertRuleDeleted(AlertRuleEvent, frozen=True, kw_only=True):
    pass


class AlertFired(AlertRuleEvent, frozen=True, kw_only=True):
    """A prediction in the rule's scope crossed its threshold (once per crossing: the rule re-arms for that
    pattern only when the probability falls below again). Public name: `prediction.alert.fired`."""

    prediction_id: str
    pattern_id: str
    pattern_name: str
    probability: float
    threshold: float
    window_days: int


class AlertRearmed(AlertRuleEvent, frozen=True, kw_only=True):
    """The pattern's probability fell back below the threshold: the next crossing fires again."""

    pattern_id: str
    probability: float


class NotificationEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "notification"


class NotificationRead(NotificationEvent, frozen=True, kw_only=True):
    """One user's notification marked read (the stream is the user's notification inbox)."""

    user_id: str
    notification_id: str


class NotificationsReadAll(NotificationEvent, frozen=True, kw_only=True):
    """Every notification of the user created up to `occurred_at` (of a type starting with `type_prefix`) read."""

    user_id: str
    type_prefix: str | None = None


class NotificationDismissed(NotificationEvent, frozen=True, kw_only=True):
    user_id: str
    notification_id: str


AnyPredictionEvent = (PredictionGenerated | PredictionUpdated | PredictionExpired | PredictionDismissed
                      | PredictionFeedbackGiven)
AnyAlertRuleEvent = AlertRuleCreated | AlertRuleUpdated | AlertRuleDeleted | AlertFired | AlertRearmed
AnyNotificationEvent = NotificationRead | NotificationsReadAll | NotificationDismissed
AnyPredictionsCategoryEvent = AnyPredictionEvent | AnyAlertRuleEvent | AnyNotificationEvent
PREDICTION_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    PredictionGenerated, PredictionUpdated, PredictionExpired, PredictionDismissed, PredictionFeedbackGiven,
    AlertRuleCreated, AlertRuleUpdated, AlertRuleDeleted, AlertFired, AlertRearmed,
    NotificationRead, NotificationsReadAll, NotificationDismissed,
)
