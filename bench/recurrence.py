"""Recurrence quality on the BGL sample's timestamps (../shared/data, evaluation only, never copied here).

    .venv/bin/python -m bench.recurrence [--data DIR] [--window 7]

Each event template (EventId) is a pattern and its lines are its occurrences. At daily origins t (after a 30-day
warm-up, until the last label window ends), every pattern seen before t gets P(recurs within W days) from the
model in domain/predictions/model.py, calibrated (refitted every 14 days) on the past only: origins whose label
window ended by t. Scored by Brier score and AUC beside the baseline "it occurred in the last W days" (a 0/1
forecast) and the same features with the prior (uncalibrated) weights, measured in the same run.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from domain.predictions.model import (
    DAY_S,
    Calibration,
    History,
    auc,
    backtest_samples,
    brier,
    features,
    fit,
    prior,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WARMUP_DAYS = 30
REFIT_DAYS = 14


def histories(path: Path) -> list[History]:
    by_event: dict[str, list[float]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_event[row["EventId"]].append(float(row["Timestamp"]))
    return [History(tuple(sorted(times))) for times in by_event.values()]


def evaluate(all_histories: Sequence[History], window_days: int) -> dict[str, float]:
    start = min(h.times[0] for h in all_histories)
    end = max(h.times[-1] for h in all_histories)
    window_s = window_days * DAY_S
    ours: list[float] = []
    raw: list[float] = []
    uncalibrated = prior(window_days)
    base: list[float] = []
    labels: list[int] = []
    calibration: Calibration | None = None
    fitted_at = -1e18
    t = start + WARMUP_DAYS * DAY_S
    while t + window_s <= end:
        if t - fitted_at >= REFIT_DAYS * DAY_S:
            calibration = fit(backtest_samples(all_histories, t, window_days), window_days)
            fitted_at = t
        assert calibration is not None
        for history in all_histories:
            x = features(history, t, window_days)
            if x is None:
                continue
            ours.append(calibration.probability(x))
            raw.append(uncalibrated.probability(x))
            base.append(1.0 if history.occurs_in(t - window_s, t) else 0.0)
            labels.append(1 if history.occurs_in(t, t + window_s) else 0)
        t += DAY_S
    return {"n": len(labels), "positives": sum(labels), "brier": brier(ours, labels), "auc": auc(ours, labels),
            "base_brier": brier(base, labels), "base_auc": auc(base, labels),
            "raw_brier": brier(raw, labels), "raw_auc": auc(raw, labels)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.recurrence")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--window", type=int, default=7)
    args = parser.parse_args(argv)
    path = args.data / "loghub" / "BGL_2k.log_structured_corrected.csv"
    if not path.exists():
        print(f"no data at {path}", file=sys.stderr)
        return 2
    s = evaluate(histories(path), args.window)
    print(f"Recurrence within {args.window} days, BGL 2k timestamps (train on the past only)")
    print(f"{'method':<34} {'brier':>7} {'auc':>6}   origins×patterns={s['n']:.0f} positives={s['positives']:.0f}")
    print(f"{'baseline: occurred in last W days':<34} {s['base_brier']:>7.4f} {s['base_auc']:>6.3f}")
    print(f"{'decayed Poisson, prior weights':<34} {s['raw_brier']:>7.4f} {s['raw_auc']:>6.3f}")
    print(f"{'calibrated decayed-Poisson logit':<34} {s['brier']:>7.4f} {s['auc']:>6.3f}")
    ok = s["brier"] < s["base_brier"] and s["auc"] >= 0.80
    print("targets (brier below baseline, auc >= 0.80):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
