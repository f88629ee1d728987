"""Grouping quality through the real system: every Loghub 2k line ingested as an issue with `POST /v1/ingest/batch`,
grouped by the pattern-detection worker as deployed, its `pattern_id` read back from the issues read model.

    .venv/bin/python -m bench.quality --through-api [--data DIR]

Runs `causeloop relay`, `causeloop projector`, `causeloop pattern-detector` and the API under uvicorn on a schema
and stream of their own (bench/harness.py). Each system gets its own workspace, so systems never group together.
A record is what bench/quality.py's signal builder assumes: title = the message, `metadata.service` = the system,
`metadata.component` = the component column where the system has one, a unique `external_id` per line. The API
refuses titles over 300 characters, so a client cuts them there (the whole line goes in `body`, which grouping does
not read); the lines so cut are counted, and the in-process `Grouper` is also run on the stored titles to tell
what the API path changed from what the pipeline did.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from adapters.settings import Settings
from bench.data import Tenant, tenant
from bench.harness import VENV_BIN, BenchEnv, bench_env
from domain.patterns.grouping import Grouper, Signal
from projections.schema import migrate

TITLE_MAX = 300  # docs/ingestion.md: the canonical record's title is 1-300 characters; longer is rejected
BATCH = 500
LINK_TIMEOUT_S = 120.0  # the wait for the detector ends when no issue got linked for this long

Rows = list[dict[str, str]]


@dataclass
class SystemRun:
    """One system's ingestion: its workspace, the issue id of each line (file order) and what the API did."""

    system: str
    tenant: Tenant
    issue_ids: list[str] = field(default_factory=list)
    truncated: int = 0
    rejected: int = 0
    batch_seconds: float = 0.0


def _record(system: str, row: dict[str, str], run_id: str) -> dict[str, Any]:
    metadata = {"service": system.lower()}
    if row.get("Component") is not None:
        metadata["component"] = row["Component"]
    return {"source": "custom_api", "external_id": f"{run_id}-{system}-{row['LineId']}",
            "title": row["Content"][:TITLE_MAX], "body": row["Content"], "metadata": metadata}


def _ingest(client: httpx.Client, run: SystemRun, rows: Rows, run_id: str) -> None:
    """Batches of 500 in file order, each sent after the previous one's answer (so commit order = file order)."""
    headers = {"Authorization": f"Bearer {run.tenant.token}"}
    started = time.monotonic()
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        records = [_record(run.system, row, run_id) for row in chunk]
        run.truncated += sum(len(row["Content"]) > TITLE_MAX for row in chunk)
        response = client.post("/v1/ingest/batch", json={"records": records}, headers=headers)
        if response.status_code != 202:
            raise RuntimeError(f"{run.system}: batch at line {start + 1} answered {response.status_code}: "
                               f"{response.text[:500]}")
        body = response.json()
        run.rejected += len(body["rejected"])
        if body["rejected"]:
            raise RuntimeError(f"{run.system}: records rejected: {body['rejected'][:3]}")
        run.issue_ids.extend(body["issue_ids"])
    run.batch_seconds = time.monotonic() - started
    if len(set(run.issue_ids)) != len(rows):
        raise RuntimeError(f"{run.system}: {len(set(run.issue_ids))} distinct issues for {len(rows)} lines")


def _connect(settings: Settings) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(settings.database_url, autocommit=True,
                           options=f"-c search_path={settings.database_schema}")


def _wait_linked(env: BenchEnv, runs: list[SystemRun]) -> float:
    """Poll the issues read model until every ingested issue has a pattern_id; give up after LINK_TIMEOUT_S
    without progress, or when a process died."""
    expected = sum(len(run.issue_ids) for run in runs)
    workspaces = [run.tenant.workspace_id for run in runs]
    started = last_progress = time.monotonic()
    linked = -1
    with _connect(env.settings) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM issues WHERE workspace_id = ANY(%s) AND pattern_id IS NOT NULL",
                               (workspaces,)).fetchone()
            now = int(row[0]) if row else 0
            if now >= expected:
                return time.monotonic() - started
            if now > linked:
                linked, last_progress = now, time.monotonic()
            dead = [proc.name for proc in env.procs if not proc.alive()]
            if dead or time.monotonic() - last_progress > LINK_TIMEOUT_S:
                raise RuntimeError(f"{linked}/{expected} issues linked to a pattern; stopped processes: {dead}\n"
                                   + "\n".join(proc.tail(10) for proc in env.procs))
            time.sleep(0.5)


def _stored(settings: Settings, run: SystemRun) -> tuple[list[str], list[Signal]]:
    """Each line's pattern_id as the read model holds it, and the Signal the detector built from the stored issue."""
    with _connect(settings) as conn:
        found = {issue_id: (pattern_id, title, metadata) for issue_id, pattern_id, title, metadata in conn.execute(
            "SELECT id, pattern_id, title, metadata FROM issues WHERE workspace_id = %s",
            (run.tenant.workspace_id,)).fetchall()}
    labels: list[str] = []
    signals: list[Signal] = []
    for issue_id in run.issue_ids:
        pattern_id, title, metadata = found[issue_id]
        labels.append(str(pattern_id))
        signals.append(Signal(key=issue_id, text=title, service=metadata.get("service"),
                              component=metadata.get("component")))
    return labels, signals


def _grouper_on(signals: list[Signal]) -> list[str]:
    grouper = Grouper()
    assigned = [grouper.assign(signal).pattern_key for signal in signals]
    return [grouper.resolve(key) for key in assigned]


def _same_partition(a: list[str], b: list[str]) -> bool:
    return len(set(a)) == len(set(b)) == len(set(zip(a, b, strict=True)))


@dataclass(frozen=True)
class ApiLabels:
    """Per system: the pipeline's labels, and notes on what the API path changed."""

    labels: dict[str, list[str]]
    notes: list[str]


def through_api(systems: tuple[str, ...], load: Callable[[str], Rows], database_url: str, nats_url: str
                ) -> ApiLabels:
    labels: dict[str, list[str]] = {}
    notes: list[str] = []
    with bench_env(database_url, nats_url) as env:
        migrate(env.settings)
        env.start_relay()
        env.start_projector()
        env.start("pattern-detector", [str(VENV_BIN / "causeloop"), "pattern-detector"])
        _, port = env.start_uvicorn("api-quality", "bench.asgi:api", 1)
        run_id = env.settings.database_schema
        runs = [SystemRun(system=system, tenant=tenant(env.settings)) for system in systems]
        rows_of = {system: load(system) for system in systems}
        started = time.monotonic()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for run in runs:
                _ingest(client, run, rows_of[run.system], run_id)
        ingest_s = time.monotonic() - started
        wait_s = _wait_linked(env, runs)
        cpu = ", ".join(f"{proc.name} {proc.cpu_seconds():.0f} s" for proc in env.procs)
        notes.append(f"{sum(len(r.issue_ids) for r in runs):,} lines ingested in {ingest_s:.1f} s "
                     f"(500-record batches, one client); every issue linked {wait_s:.1f} s after the last batch; "
                     f"CPU used since start: {cpu}")
        for run in runs:
            labels[run.system], signals = _stored(env.settings, run)
            agrees = _same_partition(labels[run.system], _grouper_on(signals))
            notes.append(f"{run.system}: {run.truncated} title(s) cut to {TITLE_MAX} characters, {run.rejected} "
                         f"rejected; pipeline partition {'equals' if agrees else 'DIFFERS from'} the in-process "
                         f"Grouper's on the stored titles")
    return ApiLabels(labels=labels, notes=notes)


def database_urls() -> tuple[str, str]:
    return (os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
            os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222"))

