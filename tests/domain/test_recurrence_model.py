"""The recurrence model on synthetic histories: calibration learns from the past only, and ranks a busy pattern
above a quiet one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from domain.predictions.model import (
    PRIOR,
    History,
    auc,
    backtest_samples,
    brier,
    calibrate,
    features,
    fit,
    forecast,
    impact_of,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _history(every_days: float, days: int, seed: int) -> History:
    rng = random.Random(seed)
    moments: list[datetime] = []
    t = 0.0
    while t < days:
        t += rng.expovariate(1 / every_days)
        moments.append(T0 + timedelta(days=t))
    return History.of(m for m in moments if m < T0 + timedelta(days=days))


def test_features_use_only_the_past() -> None:
    history = History.of([T0, T0 + timedelta(days=10)])
    assert features(history, (T0 - timedelta(days=1)).timestamp(), 7) is None
    before = features(history, (T0 + timedelta(days=5)).timestamp(), 7)
    assert before is not None and before[-1] == features(history, (T0 + timedelta(days=9)).timestamp(), 7)[-1]


def test_backtest_labels_never_look_past_now() -> None:
    history = History.of([T0 + timedelta(days=d) for d in range(0, 60, 3)])
    now = T0 + timedelta(days=30)
    samples = backtest_samples([history], now.timestamp(), 7)
    assert samples and len(samples) <= 23  # origins from day 1 to day 23: their windows end by day 30


def test_too_few_samples_keep_the_prior() -> None:
    assert fit([], 7).weights == PRIOR


def test_calibrated_model_beats_last_week_baseline_on_synthetic_mix() -> None:
    histories = [_history(every, 200, seed) for seed, every in enumerate([0.5, 2, 5, 10, 20, 40, 80] * 3)]
    now = T0 + timedelta(days=150)
    calibration = calibrate(histories, now, 7)
    assert calibration.samples > 100 and calibration.weights != PRIOR
    ours, base, labels = [], [], []
    for day in range(150, 190):
        t = (T0 + timedelta(days=day)).timestamp()
        for history in histories:
            x = features(history, t, 7)
            if x is None:
                continue
            ours.append(calibration.probability(x))
            base.append(1.0 if history.occurs_in(t - 7 * 86400, t) else 0.0)
            labels.append(1 if history.occurs_in(t, t + 7 * 86400) else 0)
    assert brier(ours, labels) < brier(base, labels)
    assert auc(ours, labels) > auc(base, labels)


def test_forecast_explains_itself() -> None:
    history = History.of([T0 + timedelta(days=d) for d in (0, 1, 2, 3)])
    now = T0 + timedelta(days=4)
    result = forecast(history, calibrate([history], now, 7), now, trigger="checkout timeout", severities=["high"])
    assert result is not None and 0 < result.probability < 1
    assert result.sample_size == 4 and result.expires_at == now + timedelta(days=7)
    assert "4 occurrence(s)" in result.explanation and result.impact == "high"


def test_impact_from_severity_mix() -> None:
    assert impact_of(["critical", "critical"]) == "critical"
    assert impact_of(["low", "low"]) == "low"
    assert impact_of(["medium"]) == "medium"


def test_auc_ranks() -> None:
    assert auc([0.1, 0.9], [0, 1]) == 1.0
    assert auc([0.5, 0.5], [0, 1]) == 0.5
