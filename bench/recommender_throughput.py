"""Throughput of the recommendation worker's core loop: folding pattern events and matching the knowledge base.

    .venv/bin/python -m bench.recommender_throughput [--patterns N] [--links K]

Feeds pre-made pattern events (N patterns of K links each, error signatures drawn from the detector bench's
vocabulary with a seeded generator) to `Recommender.observe`, exactly the call the worker makes per event; every
pattern crosses the confidence threshold once, so the matcher runs once per pattern inside the loop. Prints events
per second, patterns matched per second, and the share of patterns given a specific playbook (not the generic
runbook) on this synthetic vocabulary.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bench.detector_throughput import WORDS
from domain.events import Actor, ActorKind, Meta, envelope
from domain.ids import IssueId, WorkspaceId
from domain.patterns.events import Fingerprint, IssueLinkedToPattern, PatternDetected
from domain.recommendations.recommender import Propose, Recommender

T0 = datetime(2026, 1, 1, tzinfo=UTC)
META = Meta(workspace_id=WorkspaceId("ws_bench"), actor=Actor(kind=ActorKind.SYSTEM, id="bench"), now=T0)


def events(patterns: int, links: int, seed: int = 7) -> list[object]:
    rng = random.Random(seed)
    made: list[object] = []
    for p in range(patterns):
        stream = uuid.UUID(int=p + 1)
        template = " ".join(rng.sample(WORDS, rng.randint(3, 6)))
        made.append(PatternDetected(**envelope(META, stream, 1), name=template, template=template,
                                    fingerprint=Fingerprint(error_signature=template, hash=f"{p:032x}"),
                                    founding_issue_id=IssueId(f"iss_{p}_0")))
        for k in range(links):
            made.append(IssueLinkedToPattern(
                **envelope(META, stream, k + 2), issue_id=IssueId(f"iss_{p}_{k}"), method="fingerprint",
                similarity=1.0, fingerprint=f"{p:032x}", severity="high",
                issue_opened_at=T0 + timedelta(hours=rng.randint(0, 24 * 30))))
    return made


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.recommender_throughput")
    parser.add_argument("--patterns", type=int, default=20_000)
    parser.add_argument("--links", type=int, default=5)
    args = parser.parse_args(argv)
    made = events(args.patterns, args.links)
    recommender = Recommender()
    proposed: list[Propose] = []
    started = time.perf_counter()
    for event in made:
        proposed += [d for d in recommender.observe(event) if isinstance(d, Propose)]
    elapsed = time.perf_counter() - started
    specific = sum(1 for p in proposed if p.proposals[0].playbook.key != "generic-runbook")
    print("| core loop | events | patterns proposed | seconds | events/s | patterns/s | specific playbook |\n"
          "|---|---:|---:|---:|---:|---:|---:|")
    print(f"| fold + match | {len(made):,} | {len(proposed):,} | {elapsed:.2f} | {len(made) / elapsed:,.0f} | "
          f"{len(proposed) / elapsed:,.0f} | {specific / max(1, len(proposed)):.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
