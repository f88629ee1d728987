"""Ingest -> pattern assignment latency on the real pipeline: issues committed at a steady rate, each timed from
its commit to the arrival on NATS of the detector's IssueLinkedToPattern for it.

    .venv/bin/python -m bench.detector_latency [--rate 200] [--seconds 20]

Runs `causeloop relay`, `causeloop projector` and `causeloop pattern-detector` as processes on a schema and stream
of their own (bench/harness.py), and appends IssueOpened events straight into the event store (10 per
transaction, titles from bench.detector_throughput's synthetic generator), as the API or the ingestion path
commit them. Target: p99 <= 1 s at 200 issues/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
import nats
from nats.aio.msg import Msg

from adapters.event_store import EventStore
from bench.detector_throughput import events as synthetic
from bench.harness import VENV_BIN, bench_env
from bench.scenarios import percentile
from domain.ids import render
from projections.schema import migrate
from workers.pattern_detector import DURABLE

BATCH = 10
TARGET_P99_MS = 1_000.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.detector_latency")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--nats-url", default=os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222"))
    args = parser.parse_args(argv)
    with bench_env(args.database_url, args.nats_url) as env:
        settings = env.settings
        migrate(settings)
        env.start_relay()
        env.start_projector()
        env.start("pattern-detector", [str(VENV_BIN / "causeloop"), "pattern-detector"])
        linked: dict[str, float] = {}
        stop = threading.Event()
        ready = threading.Event()

        def watch() -> None:
            async def run() -> None:
                nc = await nats.connect(settings.nats_url, name="bench-detector-latency")

                async def on_message(msg: Msg) -> None:
                    issue_id = msgspec.json.decode(msg.data).get("data", {}).get("issue_id")
                    if issue_id and issue_id not in linked:
                        linked[issue_id] = time.time()

                await nc.subscribe(f"{settings.subject_prefix}.*.pattern.IssueLinkedToPattern", cb=on_message)
                await nc.flush()
                js = nc.jetstream()
                while True:  # the detector's consumer exists: it is caught up and listening
                    try:
                        await js.consumer_info(settings.nats_stream, DURABLE)
                        break
                    except Exception:
                        await asyncio.sleep(0.2)
                ready.set()
                while not stop.is_set():
                    await asyncio.sleep(0.05)
                await nc.close()

            asyncio.run(run())

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        if not ready.wait(60):
            raise SystemExit("the pattern detector did not start")
        time.sleep(1.0)  # its catch-up read of the (empty) store
        count = int(args.rate * args.seconds)
        made = synthetic(count, seed=11)
        store = EventStore(settings, pool_size=2)
        committed: dict[str, float] = {}
        interval = BATCH / args.rate
        started = time.monotonic()
        try:
            for i in range(0, count, BATCH):
                delay = started + (i // BATCH) * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                batch = [msgspec.structs.replace(event, originator_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                                                 workspace_id="ws_bench") for event in made[i:i + BATCH]]
                store.append(batch)
                now = time.time()
                for event in batch:
                    committed[render("iss", event.originator_id)] = now
            deadline = time.monotonic() + 30
            while len(linked) < len(committed) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            watcher.join(5)
            store.close()
        lat = [(linked[key] - at) * 1000 for key, at in committed.items() if key in linked]
        missing = len(committed) - len(lat)
        p99 = percentile(lat, 99) if lat else float("inf")
        print("| rate (issues/s) | issues | p50 ms | p99 ms | max ms | unassigned | target |\n"
              "|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {args.rate:,.0f} | {len(committed):,} | {percentile(lat, 50):.0f} | {p99:.0f} | "
              f"{max(lat, default=0):.0f} | {missing} | p99 <= {TARGET_P99_MS:,.0f} ms |")
        return 0 if p99 <= TARGET_P99_MS and missing == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
