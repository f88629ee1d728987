"""The recurrence model: P(a pattern recurs within W days), from its occurrence times only.

Pure (no clock: `now` is passed in). Features at an origin t, from the occurrences before t:

- four decayed Poisson rates (time constants 1, 7, 30 and 90 days), each turned into the Poisson probability of
  at least one occurrence in the window, 1 - exp(-rate * W), given to the model as a logit;
- the long-run rate (occurrences / age of the pattern), likewise;
- recency: log(1 + days since last seen); sample size: log(1 + occurrences).

A logistic calibration maps them to a probability. Its coefficients are fitted by a rolling-origin backtest on the
past only: origins every `step` days whose label window has fully elapsed before `now` (label = one occurrence or
more in (t, t + W]). The fit is Newton's method with an L2 pull towards a prior (the plain average of the rate
logits), so with little history the model stays near the Poisson estimate, and with more it learns how much
recency and bursts matter on this workspace's data.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

MODEL_VERSION = "recurrence-logit-v1"
WINDOWS = (7, 30, 90)
TIME_CONSTANTS_DAYS = (1.0, 7.0, 30.0, 90.0)
DAY_S = 86_400.0
EPS = 1e-4
FEATURES = ("bias", "rate_1d", "rate_7d", "rate_30d", "rate_90d", "rate_long_run", "recency", "sample_size")
PRIOR = (0.0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.0, 0.0)
RIDGE = 1.0
MAX_SAMPLES = 4_000
MIN_SAMPLES = 30
RECENT = 500
"""The decayed rates sum over the latest occurrences only: a pattern with more is near-certain to recur anyway,
and a recompute stays O(1) in its history."""


def _logit(p: float) -> float:
    p = min(1 - EPS, max(EPS, p))
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


@dataclass(frozen=True)
class History:
    """One pattern's occurrences as seconds since the epoch, ascending (sorted once, searched by bisection)."""

    times: tuple[float, ...]

    @classmethod
    def of(cls, moments: Iterable[datetime]) -> History:
        return cls(tuple(sorted(m.timestamp() for m in moments)))

    def before(self, t: float) -> int:
        """How many occurrences are at or before t."""
        return bisect.bisect_right(self.times, t)

    def occurs_in(self, start: float, end: float) -> bool:
        """Any occurrence in (start, end]."""
        return self.before(end) > self.before(start)


def features(history: History, t: float, window_days: int) -> list[float] | None:
    """The feature vector at origin t (only occurrences at or before t), None before the first occurrence."""
    n = history.before(t)
    if n == 0:
        return None
    recent = history.times[max(0, n - RECENT):n]
    out = [1.0]
    for tau in TIME_CONSTANTS_DAYS:
        rate = sum(math.exp(-(t - s) / (tau * DAY_S)) for s in recent) / tau
        out.append(_logit(1 - math.exp(-rate * window_days)))
    age_days = max(1.0, (t - history.times[0]) / DAY_S)
    out.append(_logit(1 - math.exp(-(n / age_days) * window_days)))
    out.append(math.log1p((t - recent[-1]) / DAY_S))
    out.append(math.log1p(n))
    return out


@dataclass(frozen=True)
class Calibration:
    """Fitted logistic coefficients for one window, and what they were fitted on."""

    window_days: int
    weights: tuple[float, ...]
    samples: int
    positives: int

    def probability(self, x: Sequence[float]) -> float:
        return _sigmoid(sum(w * v for w, v in zip(self.weights, x, strict=True)))


def prior(window_days: int) -> Calibration:
    return Calibration(window_days=window_days, weights=PRIOR, samples=0, positives=0)


def backtest_samples(histories: Sequence[History], now: float, window_days: int, step_days: float = 1.0,
                     max_samples: int = MAX_SAMPLES) -> list[tuple[list[float], int]]:
    """(features, label) at rolling origins whose label window ended by `now`: the past only."""
    starts = [h.times[0] for h in histories if h.times and h.times[0] < now]
    if not starts:
        return []
    window_s = window_days * DAY_S
    last_origin = now - window_s
    first = min(starts)
    origins = []
    t = first + step_days * DAY_S
    while t <= last_origin:
        origins.append(t)
        t += step_days * DAY_S
    alive = sum(1 for h in histories if h.times and h.times[0] < last_origin)
    stride = max(1, math.ceil(len(origins) * max(1, alive) / max_samples))
    samples: list[tuple[list[float], int]] = []
    for origin in origins[::-1][::stride]:
        for history in histories:
            x = features(history, origin, window_days)
            if x is not None:
                samples.append((x, 1 if history.occurs_in(origin, origin + window_s) else 0))
    return samples[:max_samples * 2]


def fit(samples: Sequence[tuple[list[float], int]], window_days: int, ridge: float = RIDGE,
        iterations: int = 25) -> Calibration:
    """Penalised logistic regression (Newton steps; the penalty pulls towards PRIOR)."""
    if len(samples) < MIN_SAMPLES:
        return prior(window_days)
    k = len(PRIOR)
    w = list(PRIOR)
    for _ in range(iterations):
        grad = [ridge * (w[i] - PRIOR[i]) for i in range(k)]
        hess = [[ridge if i == j else 0.0 for j in range(k)] for i in range(k)]
        for x, y in samples:
            p = _sigmoid(sum(a * b for a, b in zip(w, x, strict=True)))
            err = p - y
            s = max(p * (1 - p), 1e-9)
            for i in range(k):
                grad[i] += err * x[i]
                xi = s * x[i]
                row = hess[i]
                for j in range(i, k):
                    row[j] += xi * x[j]
        for i in range(k):
            for j in range(i):
                hess[i][j] = hess[j][i]
        step = _solve(hess, grad)
        current = _loss(w, samples, ridge)
        scale = 1.0
        while scale > 1e-4:  # damped Newton: halve the step until the penalised loss goes down
            trial = [a - scale * b for a, b in zip(w, step, strict=True)]
            if _loss(trial, samples, ridge) <= current:
                break
            scale /= 2
        else:
            break
        w = trial
        if max(abs(scale * v) for v in step) < 1e-6:
            break
    return Calibration(window_days=window_days, weights=tuple(w), samples=len(samples),
                       positives=sum(y for _, y in samples))


def _loss(w: Sequence[float], samples: Sequence[tuple[list[float], int]], ridge: float) -> float:
    """Penalised negative log-likelihood."""
    total = 0.5 * ridge * sum((a - b) ** 2 for a, b in zip(w, PRIOR, strict=True))
    for x, y in samples:
        z = sum(a * b for a, b in zip(w, x, strict=True))
        total += math.log1p(math.exp(-abs(z))) + max(z, 0.0) - y * z
    return total


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (a is small and positive definite)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-12:
            continue
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        if abs(m[r][r]) < 1e-12:
            continue
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def calibrate(histories: Sequence[History], now: datetime, window_days: int) -> Calibration:
    """Fit the window's calibration on the past of these histories (every pattern of a workspace)."""
    return fit(backtest_samples(histories, now.timestamp(), window_days), window_days)


SEVERITY_WEIGHT = {"critical": 1.0, "high": 0.7, "medium": 0.4, "low": 0.1}


@dataclass(frozen=True)
class Forecast:
    """One prediction: what the worker records as a PredictionGenerated/Updated event."""

    window_days: int
    probability: float
    expires_at: datetime
    likely_trigger: str
    impact: str
    explanation: str
    rate_per_day: float
    last_seen_at: datetime
    sample_size: int
    model_version: str = MODEL_VERSION


def impact_of(severities: Sequence[str]) -> str:
    """`critical` when any member was critical or the mix is heavy, then high/medium/low by the severity mix."""
    if not severities:
        return "low"
    mix = sum(SEVERITY_WEIGHT.get(s, 0.4) for s in severities) / len(severities)
    if "critical" in severities and mix >= 0.55:
        return "critical"
    if mix >= 0.6:
        return "high"
    if mix >= 0.3:
        return "medium"
    return "low"


def forecast(history: History, calibration: Calibration, now: datetime, *, trigger: str,
             severities: Sequence[str]) -> Forecast | None:
    """The calibrated probability for the window starting at `now`, with its explanation."""
    w = calibration.window_days
    t = now.timestamp()
    x = features(history, t, w)
    if x is None:
        return None
    n = history.before(t)
    last = history.times[n - 1]
    rate = sum(math.exp(-(t - s) / (30 * DAY_S)) for s in history.times[max(0, n - RECENT):n]) / 30
    p = round(calibration.probability(x), 4)
    days_since = (t - last) / DAY_S
    last_seen = datetime.fromtimestamp(last, tz=now.tzinfo)
    explanation = (f"{n} occurrence(s), last seen {days_since:.1f} day(s) ago; decayed rate {rate:.3f}/day "
                   f"(30-day time constant); calibrated on {calibration.samples} backtest origin(s) "
                   f"({calibration.positives} recurred within {w} days)")
    return Forecast(window_days=w, probability=p, expires_at=now + timedelta(days=w), likely_trigger=trigger,
                    impact=impact_of(severities), explanation=explanation, rate_per_day=round(rate, 6),
                    last_seen_at=last_seen, sample_size=n)


def brier(probabilities: Sequence[float], labels: Sequence[int]) -> float:
    return sum((p - y) ** 2 for p, y in zip(probabilities, labels, strict=True)) / max(1, len(labels))


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (ties count one half), by ranks."""
    pairs = sorted(zip(scores, labels, strict=True))
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return 0.5
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid = (i + 1 + j) / 2
        rank_sum += mid * sum(y for _, y in pairs[i:j])
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
