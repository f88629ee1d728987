"""Prediction and alert-rule decisions: pure folds of their streams and the events a change appends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

import msgspec

from domain.errors import InvalidTransition
from domain.events import Meta, envelope
from domain.predictions.events import (
    AlertFired,
    AlertRearmed,
    AlertRuleCreated,
    AlertRuleDeleted,
    AlertRuleEvent,
    AlertRuleUpdated,
    AlertThreshold,
    PredictionDismissed,
    PredictionEvent,
    PredictionExpired,
    PredictionFeedbackGiven,
    PredictionGenerated,
    PredictionUpdated,
)
from domain.predictions.model import Forecast


@dataclass(frozen=True)
class Prediction:
    id: UUID
    workspace_id: str
    version: int
    pattern_id: str
    window_days: int
    probability: float
    generated_probability: float
    predicted_at: datetime
    expires_at: datetime
    dismissed: bool = False
    resolved: bool = False


def project_prediction(state: Prediction | None, events: Sequence[PredictionEvent]) -> Prediction | None:
    for event in events:
        match event:
            case PredictionGenerated():
                state = Prediction(id=event.originator_id, workspace_id=event.workspace_id,
                                   version=event.originator_version, pattern_id=event.pattern_id,
                                   window_days=event.window_days, probability=event.probability,
                                   generated_probability=event.probability, predicted_at=event.predicted_at,
                                   expires_at=event.expires_at)
            case PredictionUpdated() if state is not None:
                state = replace(state, version=event.originator_version, probability=event.probability)
            case PredictionExpired() if state is not None:
                state = replace(state, version=event.originator_version, resolved=True)
            case PredictionDismissed() if state is not None:
                state = replace(state, version=event.originator_version, dismissed=True)
            case _ if state is not None:
                state = replace(state, version=event.originator_version)
    return state


def generate(stream_id: UUID, meta: Meta, pattern_id: str, forecast: Forecast) -> list[PredictionEvent]:
    return [PredictionGenerated(
        **envelope(meta, stream_id, 1), pattern_id=pattern_id, window_days=forecast.window_days,
        probability=forecast.probability, predicted_at=meta.now, expires_at=forecast.expires_at,
        likely_trigger=forecast.likely_trigger, impact=forecast.impact, explanation=forecast.explanation,
        model_version=forecast.model_version, rate_per_day=forecast.rate_per_day,
        sample_size=forecast.sample_size, last_seen_at=forecast.last_seen_at)]


def update(current: Prediction, meta: Meta, forecast: Forecast) -> list[PredictionEvent]:
    if current.resolved:
        return []
    return [PredictionUpdated(
        **envelope(meta, current.id, current.version + 1), probability=forecast.probability, impact=forecast.impact,
        explanation=forecast.explanation, model_version=forecast.model_version,
        rate_per_day=forecast.rate_per_day, sample_size=forecast.sample_size, last_seen_at=forecast.last_seen_at)]


def expire(current: Prediction, meta: Meta, recurred_at: datetime | None) -> list[PredictionEvent]:
    if current.resolved:
        return []
    return [PredictionExpired(**envelope(meta, current.id, current.version + 1), recurred=recurred_at is not None,
                              recurred_at=recurred_at, probability=current.generated_probability)]


def dismiss(current: Prediction, meta: Meta, reason: str | None) -> list[PredictionEvent]:
    if current.dismissed:
        return []
    return [PredictionDismissed(**envelope(meta, current.id, current.version + 1), reason=reason)]


def feedback(current: Prediction, meta: Meta, outcome: str, comment: str | None) -> list[PredictionEvent]:
    return [PredictionFeedbackGiven(**envelope(meta, current.id, current.version + 1), outcome=outcome,
                                    comment=comment)]


@dataclass(frozen=True)
class AlertRule:
    id: UUID
    workspace_id: str
    version: int
    name: str
    scope: str
    threshold: AlertThreshold
    channels: tuple[str, ...]
    enabled: bool
    snoozed_until: datetime | None
    deleted: bool = False
    above: frozenset[str] = frozenset()
    """Patterns whose prediction is above the threshold since the rule last fired for them."""

    def watches(self, pattern_id: str, window_days: int) -> bool:
        return (not self.deleted and self.threshold.window_days == window_days
                and self.scope in ("global", "all", "*", pattern_id))

    def silent_at(self, now: datetime) -> bool:
        return not self.enabled or (self.snoozed_until is not None and now < self.snoozed_until)


class RuleEdit(msgspec.Struct, frozen=True, kw_only=True):
    name: str | msgspec.UnsetType = msgspec.UNSET
    scope: str | msgspec.UnsetType = msgspec.UNSET
    threshold: AlertThreshold | msgspec.UnsetType = msgspec.UNSET
    channels: list[str] | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    snoozed_until: datetime | None | msgspec.UnsetType = msgspec.UNSET


def project_rule(state: AlertRule | None, events: Sequence[AlertRuleEvent]) -> AlertRule | None:
    for event in events:
        match event:
            case AlertRuleCreated():
                state = AlertRule(id=event.originator_id, workspace_id=event.workspace_id,
                                  version=event.originator_version, name=event.name, scope=event.scope,
                                  threshold=event.threshold, channels=tuple(event.channels), enabled=event.enabled,
                                  snoozed_until=event.snoozed_until)
            case AlertRuleUpdated() if state is not None:
                changes = {name: getattr(event, name) for name in RuleEdit.__struct_fields__
                           if getattr(event, name) is not msgspec.UNSET}
                if "channels" in changes:
                    changes["channels"] = tuple(changes["channels"])
                state = replace(state, version=event.originator_version, **changes)
            case AlertRuleDeleted() if state is not None:
                state = replace(state, version=event.originator_version, deleted=True)
            case AlertFired() if state is not None:
                state = replace(state, version=event.originator_version, above=state.above | {event.pattern_id})
            case AlertRearmed() if state is not None:
                state = replace(state, version=event.originator_version, above=state.above - {event.pattern_id})
    return state


def create_rule(stream_id: UUID, meta: Meta, name: str, scope: str, threshold: AlertThreshold, channels: list[str],
                enabled: bool, snoozed_until: datetime | None) -> list[AlertRuleEvent]:
    return [AlertRuleCreated(**envelope(meta, stream_id, 1), name=name, scope=scope, threshold=threshold,
                             channels=channels, enabled=enabled, snoozed_until=snoozed_until)]


def update_rule(current: AlertRule, meta: Meta, edit: RuleEdit) -> list[AlertRuleEvent]:
    if current.deleted:
        raise InvalidTransition("the alert rule was deleted")
    fields = {name: getattr(edit, name) for name in RuleEdit.__struct_fields__
              if getattr(edit, name) is not msgspec.UNSET}
    if not fields:
        return []
    return [AlertRuleUpdated(**envelope(meta, current.id, current.version + 1), **fields)]


def delete_rule(current: AlertRule, meta: Meta) -> list[AlertRuleEvent]:
    return [] if current.deleted else [AlertRuleDeleted(**envelope(meta, current.id, current.version + 1))]


def evaluate_rule(rule: AlertRule, meta: Meta, *, prediction_id: str, pattern_id: str, pattern_name: str,
                  probability: float, window_days: int) -> list[AlertRuleEvent]:
    """Fire once per crossing: when the probability reaches the threshold and the rule is not already above for
    the pattern; re-arm when it falls below. A snoozed or disabled rule stays silent (and does not arm)."""
    if not rule.watches(pattern_id, window_days):
        return []
    above = probability >= rule.threshold.probability
    if above and pattern_id not in rule.above:
        if rule.silent_at(meta.now):
            return []
        return [AlertFired(**envelope(meta, rule.id, rule.version + 1), prediction_id=prediction_id,
                           pattern_id=pattern_id, pattern_name=pattern_name, probability=probability,
                           threshold=rule.threshold.probability, window_days=window_days)]
    if not above and pattern_id in rule.above:
        return [AlertRearmed(**envelope(meta, rule.id, rule.version + 1), pattern_id=pattern_id,
                             probability=probability)]
    return []
