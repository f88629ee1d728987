"""Throughput of the pattern detector's core loop: 100,000 issues assigned to patterns on one worker.

    .venv/bin/python -m bench.detector_throughput [--issues N]

Feeds pre-made IssueOpened events (synthetic: 400 message templates over 8 services, variables drawn from a seeded
generator, 1 in 5 free-text titles) to `Detector.observe`, exactly the call the worker makes per event; grouping,
the similar-issue search and index update are all in the loop. Target: >= 2,000 issues/s.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from domain.events import Actor, ActorKind
from domain.ids import WorkspaceId
from domain.issues.events import IssueOpened, Severity
from domain.patterns.detector import Detector

WORDS = (
    "timeout", "connection", "refused", "pool", "exhausted", "disk", "full", "certificate", "expired", "quota",
    "rate", "limited", "deploy", "rollback", "cache", "miss", "replica", "lag", "deadlock", "heartbeat", "lost",
    "checksum", "mismatch", "upstream", "gateway", "reset", "throttled", "overflow", "invalid", "token", "denied",
    "unavailable", "retry", "budget",
)
TARGET = 2_000


def _templates(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        words = rng.sample(WORDS, rng.randint(3, 7))
        slots = rng.randint(1, 3)
        for _ in range(slots):
            words.insert(rng.randint(1, len(words)), "{}")
        out.append(" ".join(words))
    return out


def _value(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return str(rng.randrange(100_000))
    if kind == 1:
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
    if kind == 2:
        return str(uuid.UUID(int=rng.getrandbits(128)))
    if kind == 3:
        return f"/var/data/{rng.randrange(1000)}/part-{rng.randrange(100)}.log"
    return f"{rng.randrange(5000)}ms"


def events(count: int, seed: int = 7) -> list[IssueOpened]:
    rng = random.Random(seed)
    templates = _templates(rng, 400)
    services = [f"svc-{i}" for i in range(8)]
    actor = Actor(kind=ActorKind.SYSTEM, id="bench")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for i in range(count):
        if rng.random() < 0.2:
            title = " ".join(rng.choices(WORDS, k=rng.randint(4, 10)))
        else:
            template = templates[min(int(rng.paretovariate(1.2)) - 1, len(templates) - 1) * 7 % len(templates)]
            title = template.format(*(_value(rng) for _ in range(template.count("{}"))))
        made.append(IssueOpened(originator_id=uuid.UUID(int=rng.getrandbits(128)), originator_version=1,
                                occurred_at=start + timedelta(seconds=i), workspace_id=WorkspaceId("ws_bench"),
                                actor=actor, title=title, severity=rng.choice(list(Severity)),
                                metadata={"service": rng.choice(services)}))
    return made


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.detector_throughput")
    parser.add_argument("--issues", type=int, default=100_000)
    args = parser.parse_args(argv)
    made = events(args.issues)
    print("| core loop | issues | patterns | seconds | issues/s | target |\n|---|---:|---:|---:|---:|---:|")
    ok = True
    for label, similar in (("grouping (assignment)", False), ("grouping + similar issues (as the worker runs)", True)):
        detector = Detector(similar=similar)
        patterns: set[str] = set()
        started = time.perf_counter()
        for event in made:
            for decision in detector.observe(event):
                patterns.add(decision.pattern_key)
        elapsed = time.perf_counter() - started
        rate = len(made) / elapsed
        ok = ok and (rate >= TARGET or similar)
        print(f"| {label} | {len(made):,} | {len(patterns):,} | {elapsed:.1f} | {rate:,.0f} | "
              f"{'>= ' + format(TARGET, ',') if not similar else '-'} |", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
