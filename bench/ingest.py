"""The ingestion measurements (issue #12): batches of 500 records from 4 clients, the same stream with repeats, and
the raw psycopg `executemany` of the same rows as the baseline. `POST /v1/ingest/events` runs through the shared
HTTP load (wrk) in bench/__main__.py."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from adapters.settings import Settings
from bench.data import vocabulary

SOURCES = ("jira", "github", "pagerduty", "sentry", "datadog", "custom_api")
TEAMS = ("payments", "search", "infra", "identity", "mobile")


@dataclass
class Stream:
    """Pre-encoded batch bodies, the rows they hold (for the baseline) and how many distinct keys they name."""

    bodies: list[bytes]
    rows: list[tuple[str, str, str, str, str, str]]
    keys: set[tuple[str, str]] = field(default_factory=set)
    repeats: int = 0


def make_stream(batches: int, size: int = 500, repeat_fraction: float = 0.0, seed: int = 7,
                settled_after: int = 8) -> Stream:
    """`batches` bodies of `size` records with fresh external ids, except `repeat_fraction` of each batch (from the
    second on), which repeat keys of earlier batches (uniformly): half of them as sent, half with a severity drawn
    again (so about three quarters of those change the issue). A repeat names a key of a batch at least
    `settled_after` batches back, i.e. one already answered when this one is sent (4 clients keep at most 4 in
    flight): a resend of a record whose first push is still in flight must wait for it (docs/ingestion.md), and
    `settled_after=1` measures that case."""
    rng = random.Random(seed)
    words = vocabulary()
    run = uuid.uuid4().hex[:8]
    stream = Stream(bodies=[], rows=[])
    earlier: list[dict[str, Any]] = []
    recent: list[list[dict[str, Any]]] = []
    serial = 0
    for _ in range(batches):
        records: list[dict[str, Any]] = []
        repeats = int(size * repeat_fraction) if earlier else 0
        for _ in range(repeats):
            record = dict(rng.choice(earlier))
            if rng.random() < 0.5:
                record["severity"] = rng.choice(("p1", "p2", "p3", "p4"))
            records.append(record)
        for _ in range(size - repeats):
            serial += 1
            source = SOURCES[serial % len(SOURCES)]
            record = {"source": source, "external_id": f"{run}-{serial}",
                      "title": " ".join(rng.choice(words) for _ in range(6)),
                      "body": " ".join(rng.choice(words) for _ in range(16)),
                      "severity": rng.choice(("p1", "p2", "p3", "p3", "p4")), "team": rng.choice(TEAMS),
                      "external_url": f"https://tracker.example.com/{run}/{serial}"}
            records.append(record)
            stream.keys.add((source, record["external_id"]))
        recent.append(records[repeats:])
        if len(recent) >= settled_after:
            earlier.extend(recent.pop(0))
        rng.shuffle(records)
        stream.repeats += repeats
        stream.bodies.append(json.dumps({"records": records}).encode())
        stream.rows.extend((r["source"], r["external_id"], r["title"], r["body"], r["severity"], r["team"])
                           for r in records)
    return stream


@dataclass(frozen=True)
class BatchRun:
    batches: int
    records: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def push_batches(port: int, token: str, bodies: list[bytes], *, clients: int, seconds: float) -> BatchRun:
    """Closed loop: each of `clients` connections posts the next body when its previous answer is in, until the
    bodies run out or `seconds` pass. Counts the records the 202s accepted."""
    return asyncio.run(_push(port, token, bodies, clients, seconds))


async def _push(port: int, token: str, bodies: list[bytes], clients: int, seconds: float) -> BatchRun:
    queue = iter(bodies)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted = 0
    errors = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.perf_counter()
    deadline = started + seconds
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                 limits=httpx.Limits(max_connections=clients)) as client:
        async def one() -> None:
            nonlocal accepted, errors
            for body in queue:
                if time.perf_counter() >= deadline:
                    return
                t = time.perf_counter()
                try:
                    response = await client.post("/v1/ingest/batch", content=body, headers=headers)
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 202:
                    accepted += int(response.json()["accepted"])
                else:
                    errors += 1

        await asyncio.gather(*(one() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000 if ordered else float("nan")

    return BatchRun(batches=len(latencies), records=accepted, seconds=elapsed, errors=errors, p50_ms=pct(50),
                    p99_ms=pct(99), statuses=statuses)


@dataclass(frozen=True)
class Baseline:
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def executemany_baseline(settings: Settings, rows: list[tuple[str, str, str, str, str, str]], seconds: float,
                         per_transaction: int = 500) -> Baseline:
    """Raw psycopg: the same rows, `executemany` of 500 per transaction on one connection, no checks, no dedup."""
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_ingest_rows (id bigserial PRIMARY KEY, source text, "
                     "external_id text, title text, body text, severity text, team text)")
        conn.commit()
        started = time.perf_counter()
        done = 0
        with conn.cursor() as cur:
            for start in range(0, len(rows), per_transaction):
                if time.perf_counter() - started >= seconds:
                    break
                chunk = rows[start:start + per_transaction]
                cur.executemany("INSERT INTO bench_ingest_rows (source, external_id, title, body, severity, team) "
                                "VALUES (%s, %s, %s, %s, %s, %s)", chunk)
                conn.commit()
                done += len(chunk)
        elapsed = time.perf_counter() - started
    return Baseline(rows=done, seconds=elapsed)


def stored_issues(settings: Settings, workspace_id: str) -> tuple[int, int]:
    """(issue streams opened in the event store, issues in the read model) for the workspace."""
    with psycopg.connect(settings.database_url, autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        opened = conn.execute("SELECT count(*) FROM causeloop_events WHERE topic = 'IssueOpened' AND "
                              "convert_from(state, 'UTF8')::jsonb->>'workspace_id' = %s", (workspace_id,)).fetchone()
        listed = conn.execute("SELECT count(*) FROM issues WHERE workspace_id = %s", (workspace_id,)).fetchone()
    return int(opened[0]) if opened else 0, int(listed[0]) if listed else 0
