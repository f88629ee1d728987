"""Alert rules fire once per crossing, re-arm when the probability falls back, and stay silent while snoozed."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from domain.predictions.events import AlertFired, AlertRearmed, AlertThreshold
from domain.predictions.prediction import AlertRule, RuleEdit, create_rule, evaluate_rule, project_rule, update_rule
from tests.builders import T0, meta

RULE = UUID("8b4d5e6f-7081-5c9d-8ebf-2a3b4c5d6e7f")
PATTERN = "pat_01KV1PX3NR96XJRGD48NNHH431"


def _rule(**fields: object) -> AlertRule:
    created = create_rule(RULE, meta(T0), "r", "global", AlertThreshold(probability=0.7, window_days=7), [], True,
                          None)
    rule = project_rule(None, created)
    assert rule is not None
    edit = RuleEdit(**fields)  # type: ignore[arg-type]
    changed = update_rule(rule, meta(T0), edit) if fields else []
    folded = project_rule(rule, changed)
    assert folded is not None
    return folded


def _evaluate(rule: AlertRule, probability: float, days: float = 0, window: int = 7) -> AlertRule:
    events = evaluate_rule(rule, meta(T0 + timedelta(days=days)), prediction_id="prd_x", pattern_id=PATTERN,
                           pattern_name="p", probability=probability, window_days=window)
    folded = project_rule(rule, events)
    assert folded is not None
    return folded


def test_fires_once_per_crossing_and_rearms() -> None:
    rule = _rule()
    fired = _evaluate(rule, 0.8)
    assert fired.version == rule.version + 1 and PATTERN in fired.above
    again = _evaluate(fired, 0.9)
    assert again.version == fired.version  # still above: nothing new
    rearmed = _evaluate(again, 0.5)
    assert PATTERN not in rearmed.above
    assert _evaluate(rearmed, 0.75).version == rearmed.version + 1


def test_snoozed_and_disabled_rules_stay_silent() -> None:
    snoozed = _rule(snoozed_until=T0 + timedelta(days=2))
    assert _evaluate(snoozed, 0.99).version == snoozed.version
    assert PATTERN in _evaluate(snoozed, 0.99, days=3).above  # the snooze ended
    disabled = _rule(enabled=False)
    assert _evaluate(disabled, 0.99).version == disabled.version


def test_scope_and_window_select_predictions() -> None:
    other = _rule(scope="pat_01KV1PX3NR96XJRGD48NNHH999")
    assert _evaluate(other, 0.99).version == other.version
    rule = _rule()
    assert _evaluate(rule, 0.99, window=30).version == rule.version
    events = evaluate_rule(rule, meta(T0), prediction_id="prd_x", pattern_id=PATTERN, pattern_name="p",
                           probability=0.99, window_days=7)
    assert isinstance(events[0], AlertFired) and events[0].threshold == 0.7
    assert not any(isinstance(e, AlertRearmed) for e in events)
