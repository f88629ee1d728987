"""`python -m bench [--quick] [--only NAME[,NAME]]`: measure Causeloop against its targets, print one table.

Scenarios (names for --only): baselines, post, get, search, lag, standing, rebuild, webhooks, sync, ingest_batch,
ingest_repeats, ingest_events, scale (1,000,000 issues; only when named).
The bench makes its own schema (bench_<random>), JetStream stream and subject prefix, runs `migrate`,
starts the processes it measures (uvicorn with the API, `causeloop relay`, `causeloop projector` of every read model),
and drops the schema and stream at the end. The table goes to stdout and bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec
import psycopg

from bench import ingest
from bench import scenarios as sc
from bench.data import COMMON, Tenant, tenant, vocabulary, write_words
from bench.harness import DEFAULT_DATABASE_URL, DEFAULT_NATS_URL, BenchEnv, bench_env
from bench.load import which_client
from projections.schema import migrate

SCENARIOS = ("baselines", "post", "get", "search", "lag", "standing", "rebuild", "webhooks", "sync", "ingest_batch",
             "ingest_repeats", "ingest_events", "scale")
SCALE_ISSUES = 1_000_000
RESULTS = Path(__file__).with_name("results")
POST_PATH = "/v1/issues"
INGEST_EVENTS_PATH = "/v1/ingest/events"
FILTER_PATH = "/v1/issues?limit=25&status=open&severity=high"
SEARCH_PATH = "/v1/issues?limit=25&q=%s"


@dataclass
class Row:
    benchmark: str
    target: str
    measured: str
    verdict: str


@dataclass(frozen=True)
class Plan:
    quick: bool
    only: tuple[str, ...]
    client: str
    workers: tuple[int, ...]
    issues: int
    post_s: float
    get_s: float
    baseline_s: float
    lag_s: float
    warmup_s: float
    post_clients: int = 64
    get_clients: int = 32


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short smoke run (5 s loads, 10,000 seeded issues)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk",
                        help="HTTP load generator (falls back to python when wrk is not installed)")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts to try (default 1,2)")
    parser.add_argument("--issues", type=int, default=None, help="issues to seed (default 100,000; quick 10,000)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--nats-url", default=os.environ.get("BENCH_NATS_URL", DEFAULT_NATS_URL))
    parser.add_argument("--quiet-wait", type=float, default=180,
                        help="seconds to wait at most for the shared machine to go idle before starting (default 180)")
    parser.add_argument("--keep", action="store_true", help="keep the schema and stream (for inspection)")
    args = parser.parse_args(argv)
    only = tuple(s.strip() for s in args.only.split(",") if s.strip()) or tuple(s for s in SCENARIOS if s != "scale")
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
    workers = tuple(int(w) for w in args.workers.split(",") if w.strip())
    for host_url in (args.database_url, args.nats_url):
        if "127.0.0.1" not in host_url and "localhost" not in host_url:
            parser.error(f"the bench runs against loopback services only, not {host_url}")
    quick = args.quick
    plan = Plan(quick=quick, only=only, client=which_client(args.client), workers=workers,
                issues=args.issues or (10_000 if quick else 100_000),
                post_s=5 if quick else 30, get_s=5 if quick else 20, baseline_s=3 if quick else 10,
                lag_s=5 if quick else 20, warmup_s=1 if quick else 3)
    return args, plan


def fmt(n: float, digits: int = 0) -> str:
    return f"{n:,.{digits}f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class Bench:
    def __init__(self, env: BenchEnv, plan: Plan) -> None:
        self.env = env
        self.plan = plan
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.raw: dict[str, Any] = {}
        self.words_dir = env.run_dir
        words = vocabulary()
        self.common_words = write_words(env.run_dir / "common.txt", words[:COMMON])
        self.rest_words = write_words(env.run_dir / "rest.txt", words[COMMON:])
        self.pipeline_started = False
        self.seeded: Tenant | None = None
        self.diagnostics: list[str] = []

    def say(self, message: str) -> None:
        print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def waits(self, label: str, run: sc.HttpRun) -> None:
        """One diagnostics line: where Postgres sessions spent the measured run (sampled every 100 ms)."""
        top = run.waits.get("top_queries", [])[:3]
        if top:
            parts = "; ".join(f"{q['avg_sessions']:.1f} × {q['wait']} `{q['query'][:60]}`" for q in top)
            self.diagnostics.append(f"{label} — busiest Postgres sessions (avg count): {parts}")

    def guarded(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:
            traceback.print_exc()
            self.rows.append(Row(name, "—", f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}",
                                 "FAIL"))

    # -- pipeline --------------------------------------------------------------------------------------------------

    def pipeline(self) -> None:
        """Start the relay and the projector of every read model (as `causeloop up` and compose.yaml do) once;
        wait until an event gets through."""
        if not self.pipeline_started:
            self.env.start_relay()
            self.env.start_projector()
            self.pipeline_started = True
            took = sc.probe_pipeline(self.env, tenant(self.env.settings))
            self.say(f"relay + projector up (first event projected after {took:.1f} s)")

    def drain(self, timeout: float = 600) -> None:
        """Every projector idle at the head, so the next measurement has the machine to itself."""
        sc.wait_caught_up(self.env.settings, sc.head(self.env.settings), timeout, every_projection=True,
                          alive=lambda: all(p.alive() for p in self.env.procs))

    # -- scenarios -------------------------------------------------------------------------------------------------

    def baselines(self) -> None:
        plan, s = self.plan, self.env.settings
        self.say(f"baseline: raw psycopg INSERT autocommit, {plan.baseline_s:.0f} s")
        raw = sc.raw_insert(s, plan.baseline_s)
        self.rows.append(Row("Baseline: raw psycopg single-row INSERT, autocommit, 1 connection", "baseline",
                             f"{fmt(raw.rate)} rows/s (p50 {raw.p50_ms:.2f} ms, p99 {raw.p99_ms:.2f} ms)", "info"))
        self.say(f"baseline: eventsourcing Application.save(one aggregate), {plan.baseline_s:.0f} s")
        es = sc.eventsourcing_save(s, plan.baseline_s)
        self.rows.append(Row("Baseline: eventsourcing save(), 1 aggregate per transaction", "baseline (~360/s)",
                             f"{fmt(es.rate)} saves/s (p50 {es.p50_ms:.2f} ms, p99 {es.p99_ms:.2f} ms)", "info"))
        self.raw["baselines"] = {"raw_insert": raw.__dict__, "eventsourcing": es.__dict__}
        for workers in plan.workers:
            self.say(f"baseline: Litestar hello-world, {workers} worker(s), {plan.post_clients} clients")
            run = sc.http_load(self.env, name="hello", factory="bench.asgi:hello", workers=workers,
                               client=plan.client, mode="get", path="/hello", token=None,
                               connections=plan.post_clients, seconds=plan.baseline_s, warmup=plan.warmup_s,
                               words=None, max_rate=100_000)
            load = run.load
            self.rows.append(Row(
                f"Baseline: Litestar hello-world, uvicorn {workers} worker(s), {plan.post_clients} clients",
                "baseline",
                f"{fmt(load.rate)} req/s (p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms); "
                f"client {load.client} used {load.client_cpu_share:.2f} cores "
                f"(~{fmt(load.requests / load.client_cpu_s if load.client_cpu_s else 0)} req per client CPU-s); "
                f"{run.cpu_note()}",
                "info"))
            self.raw[f"hello_w{workers}"] = self._http_raw(run)

    def post(self) -> None:
        plan = self.plan
        self.pipeline()
        writer = tenant(self.env.settings)
        for workers in plan.workers:
            self.drain()
            self.say(f"POST /v1/issues: {workers} worker(s), {plan.post_clients} clients, {plan.post_s:.0f} s")
            box: dict[str, int] = {}

            def mark(box: dict[str, int] = box) -> None:
                self.drain()
                box["before"] = sc.head(self.env.settings)

            run = sc.http_load(self.env, name="api-post", factory="bench.asgi:api", workers=workers,
                               client=plan.client, mode="post", path=POST_PATH, token=writer.token,
                               connections=plan.post_clients, seconds=plan.post_s, warmup=plan.warmup_s,
                               words=self.rest_words, max_rate=20_000, after=mark)
            after = sc.head(self.env.settings)
            sizes = sc.transaction_sizes(self.env.settings, box.get("before", 0), after)
            load = run.load
            ok = load.rate >= 1000 and load.p99_ms <= 250 and load.non_2xx == 0 and load.socket_errors == 0
            self.rows.append(Row(
                f"`POST /v1/issues` (read-your-writes), {plan.post_clients} clients, {plan.post_s:.0f} s, "
                f"uvicorn {workers} worker(s)",
                "≥ 1,000 creates/s, p99 ≤ 250 ms",
                f"{fmt(load.rate)} creates/s, p50 {load.p50_ms:.0f} ms, p99 {load.p99_ms:.0f} ms "
                f"(errors {load.non_2xx + load.socket_errors}, consistency pending {load.pending}; "
                f"{sizes['mean']:.1f} events per store transaction; {run.cpu_note()})",
                verdict(ok)))
            self.raw[f"post_w{workers}"] = {**self._http_raw(run), "transaction_sizes": sizes}
            self.waits(f"POST, {workers} worker(s)", run)

    def sync(self) -> None:
        """A connector sync of 10,000 provider issues (2,000 in --quick) from the local provider server."""
        from bench.connector_sync import connector_sync

        self.pipeline()
        self.drain()
        issues = 2_000 if self.plan.quick else 10_000
        self.say(f"connector sync: {fmt(issues)} GitHub issues from the local provider server")

        def projected(position: int) -> None:
            sc.wait_caught_up(self.env.settings, position, 600)

        done = connector_sync(self.env.settings, tenant(self.env.settings), issues, projected)
        ok = done.sync_rate >= 2000 and done.counts.created == issues
        self.rows.append(Row(
            f"Connector sync of {fmt(issues)} GitHub issues from the local provider server (100 per page)",
            "≥ 2,000 issues/s",
            f"{fmt(done.sync_rate)} issues/s fetched and appended ({done.sync_s:.1f} s, {fmt(done.counts.created)} "
            f"created); {fmt(done.end_to_end_rate)} issues/s until the issues read model had them all "
            f"({done.projected_s:.1f} s); re-run with nothing changed {done.rerun_s * 1000:.0f} ms "
            f"({done.rerun.fetched} fetched, {done.rerun.unchanged} unchanged)", verdict(ok)))
        self.raw["sync"] = {"issues": issues, "sync_s": done.sync_s, "projected_s": done.projected_s,
                            "counts": msgspec.structs.asdict(done.counts), "rerun_s": done.rerun_s}

    # -- ingestion (issue #12) ---------------------------------------------------------------------------------

    def ingest_batch(self) -> None:
        """500-record batches from 4 clients against the raw psycopg executemany of the same rows."""
        self._ingest_batches(0.0)

    def ingest_repeats(self) -> None:
        """The same stream with 30% of each batch repeating earlier external ids (half of them changed)."""
        self._ingest_batches(0.3)

    def _ingest_batches(self, repeat_fraction: float) -> None:
        plan = self.plan
        self.pipeline()
        batches = 40 if plan.quick else 200
        label = "repeats" if repeat_fraction else "fresh"
        self.say(f"ingest batch ({label}): building {batches} bodies of 500 records")
        stream = ingest.make_stream(batches, repeat_fraction=repeat_fraction, seed=11 if repeat_fraction else 7)
        warm = ingest.make_stream(10, seed=5)
        for workers in plan.workers:
            writer, warmer = tenant(self.env.settings), tenant(self.env.settings)
            self.drain()
            proc, port = self.env.start_uvicorn(f"api-ingest-{label}-w{workers}", "bench.asgi:api", workers)
            try:
                ingest.push_batches(port, warmer.token, warm.bodies, clients=4, seconds=60)
                self.drain()
                self.say(f"ingest batch ({label}): {workers} worker(s), 4 clients, {batches} batches")
                meter, t0 = sc.CpuMeter(self.env.own_pids), time.monotonic()
                procs = [proc, *(p for p in self.env.procs if p.alive() and p.name in ("relay", "projector"))]
                before = [p.cpu_seconds() for p in procs]
                run = ingest.push_batches(port, writer.token, stream.bodies, clients=4, seconds=3600)
                took = time.monotonic() - t0
                per_proc = ", ".join(f"{p.name.split('-')[0]} {(p.cpu_seconds() - b) / took:.2f}"
                                     for p, b in zip(procs, before, strict=True))
                cpu = f"{self._cpu(meter, took)} (of which {per_proc})"
            finally:
                self.env.stop(proc)
            self.drain()
            opened, listed = ingest.stored_issues(self.env.settings, writer.workspace_id)
            exact = opened == listed == len(stream.keys)
            self.raw[f"ingest_{label}_w{workers}"] = {**run.__dict__, "rate": run.rate, "distinct_keys":
                                                      len(stream.keys), "opened": opened, "listed": listed}
            if repeat_fraction:
                fresh = self.raw.get(f"ingest_fresh_w{workers}", {}).get("rate")
                ratio = run.rate / fresh if fresh else float("nan")
                ok = run.errors == 0 and exact and (fresh is None or ratio >= 0.8)
                self.rows.append(Row(
                    f"`POST /v1/ingest/batch` with 30% repeats of earlier external_ids, 500-record batches, 4 clients, "
                    f"uvicorn {workers} worker(s)",
                    "within 20% of the fresh stream; issue count exact",
                    f"{fmt(run.rate)} records/s ({'n/a' if fresh is None else f'{ratio:.0%}'} of fresh), batch p50 "
                    f"{run.p50_ms:.0f} ms, p99 {run.p99_ms:.0f} ms, errors {run.errors}; issues: "
                    f"{fmt(len(stream.keys))} distinct keys, {fmt(opened)} opened in the store, {fmt(listed)} in "
                    f"the read model ({'exact' if exact else 'WRONG'}); {cpu}", verdict(ok)))
                continue
            self.say("baseline: raw psycopg executemany of the same rows, 500 per transaction")
            base = ingest.executemany_baseline(self.env.settings, stream.rows, seconds=30)
            ok = run.errors == 0 and exact and run.rate >= 10_000
            self.rows.append(Row(
                f"`POST /v1/ingest/batch`, 500-record batches, 4 clients, {fmt(run.records)} records, "
                f"uvicorn {workers} worker(s)",
                "≥ 10,000 records/s durably accepted",
                f"{fmt(run.rate)} records/s = {run.rate / base.rate:.0%} of raw psycopg executemany of the same rows "
                f"({fmt(base.rate)} rows/s, 500 per transaction, same run); batch p50 {run.p50_ms:.0f} ms, p99 "
                f"{run.p99_ms:.0f} ms, errors {run.errors}; issues {'exact' if exact else 'WRONG'} "
                f"({fmt(opened)}/{fmt(len(stream.keys))}); {cpu}", verdict(ok)))
            self.raw[f"ingest_baseline_w{workers}"] = {"rows": base.rows, "seconds": base.seconds, "rate": base.rate}

    def ingest_events(self) -> None:
        plan = self.plan
        self.pipeline()
        writer = tenant(self.env.settings)
        for workers in plan.workers:
            self.drain()
            self.say(f"POST {INGEST_EVENTS_PATH}: {workers} worker(s), {plan.post_clients} clients, "
                     f"{plan.post_s:.0f} s")
            run = sc.http_load(self.env, name="api-ingest-events", factory="bench.asgi:api", workers=workers,
                               client=plan.client, mode="post", path=INGEST_EVENTS_PATH, token=writer.token,
                               connections=plan.post_clients, seconds=plan.post_s, warmup=plan.warmup_s,
                               words=self.rest_words, max_rate=20_000, after=self.drain)
            load = run.load
            ok = load.rate >= 1000 and load.p99_ms <= 250 and load.non_2xx == 0 and load.socket_errors == 0
            self.rows.append(Row(
                f"`POST {INGEST_EVENTS_PATH}` (read-your-writes), {plan.post_clients} clients, {plan.post_s:.0f} s, "
                f"uvicorn {workers} worker(s)",
                "≥ 1,000 signals/s, p99 ≤ 250 ms",
                f"{fmt(load.rate)} signals/s, p50 {load.p50_ms:.0f} ms, p99 {load.p99_ms:.0f} ms "
                f"(errors {load.non_2xx + load.socket_errors}, consistency pending {load.pending}; {run.cpu_note()})",
                verdict(ok)))
            self.raw[f"ingest_events_w{workers}"] = self._http_raw(run)
            self.waits(f"POST ingest/events, {workers} worker(s)", run)

    def ensure_seeded(self) -> Tenant:
        if self.seeded is None:
            self.pipeline()
            reader = tenant(self.env.settings)
            self.say(f"seeding {fmt(self.plan.issues)} issues (event store, batches of 1,000; relay + projector on)")
            seeded = sc.seed(self.env, reader, self.plan.issues)
            self.rows.append(Row(
                f"Seed: {fmt(seeded.issues)} issues = {fmt(seeded.events)} events appended, 1,000 issues per "
                "transaction", "—",
                f"append {fmt(seeded.append_rate)} events/s; live pipeline (relay → NATS → projector) had it all "
                f"after {seeded.caught_up_s:.1f} s = {fmt(seeded.pipeline_rate)} events/s", "info"))
            self.raw["seed"] = seeded.__dict__
            self.seeded = reader
        return self.seeded

    def get(self) -> None:
        plan = self.plan
        reader = self.ensure_seeded()
        self.drain()
        matches = sc.filter_count(self.env.settings, reader.workspace_id)
        for workers in plan.workers:
            self.say(f"GET filter: {workers} worker(s), {plan.get_clients} clients, {plan.get_s:.0f} s")
            run = sc.http_load(self.env, name="api-get", factory="bench.asgi:api", workers=workers,
                               client=plan.client, mode="get", path=FILTER_PATH, token=reader.token,
                               connections=plan.get_clients, seconds=plan.get_s, warmup=plan.warmup_s,
                               words=None, max_rate=50_000)
            load = run.load
            ok = load.rate >= 1500 and load.p99_ms <= 50 and load.non_2xx == 0 and load.socket_errors == 0
            self.rows.append(Row(
                f"`GET {FILTER_PATH}` over {fmt(plan.issues)} issues ({fmt(matches)} match), "
                f"{plan.get_clients} clients, uvicorn {workers} worker(s)",
                "≥ 1,500 req/s, p99 ≤ 50 ms",
                f"{fmt(load.rate)} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms "
                f"(errors {load.non_2xx + load.socket_errors}; {run.cpu_note()})", verdict(ok)))
            self.raw[f"get_filter_w{workers}"] = self._http_raw(run)
            self.waits(f"GET filter, {workers} worker(s)", run)
        self.explain(reader)

    def search(self) -> None:
        plan = self.plan
        reader = self.ensure_seeded()
        self.drain()
        sample = vocabulary()[COMMON:COMMON + 50]
        counts = sorted(sc.match_counts(self.env.settings, reader.workspace_id, sample))
        common_counts = sorted(sc.match_counts(self.env.settings, reader.workspace_id, vocabulary()[:COMMON]))
        for label, words, count_note in (
                ("a random word", self.rest_words, f"median {fmt(counts[len(counts) // 2])} matches"),
                ("a common word", self.common_words, f"median {fmt(common_counts[len(common_counts) // 2])} "
                                                     "matches")):
            for workers in plan.workers:
                self.say(f"GET q=({label}): {workers} worker(s), {plan.get_clients} clients, {plan.get_s:.0f} s")
                run = sc.http_load(self.env, name="api-search", factory="bench.asgi:api", workers=workers,
                                   client=plan.client, mode="get", path=SEARCH_PATH, token=reader.token,
                                   connections=plan.get_clients, seconds=plan.get_s, warmup=plan.warmup_s,
                                   words=words, max_rate=50_000)
                load = run.load
                ok = load.p99_ms <= 100 and load.non_2xx == 0 and load.socket_errors == 0
                primary = label == "a random word"
                self.rows.append(Row(
                    f"`GET /v1/issues?limit=25&q=<{label}>` over {fmt(plan.issues)} issues ({count_note}), "
                    f"{plan.get_clients} clients, uvicorn {workers} worker(s)",
                    "p99 ≤ 100 ms" if primary else "p99 ≤ 100 ms (stress, beyond the issue)",
                    f"{fmt(load.rate)} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms "
                    f"(errors {load.non_2xx + load.socket_errors}; {run.cpu_note()})",
                    verdict(ok) if primary else f"{verdict(ok)} (info)"))
                self.raw[f"search_{'random' if primary else 'common'}_w{workers}"] = {
                    **self._http_raw(run), "match_counts": counts if primary else common_counts}
                self.waits(f"GET q=<{label}>, {workers} worker(s)", run)
        self.explain(reader)

    def scale(self) -> None:
        """Reads at 1,000,000 issues in one workspace (issue 12): the filtered list and a search for a word in
        10% of issues. The rows go straight into the read model (see `sc.seed_read_model`)."""
        plan = self.plan
        issues = plan.issues if plan.quick else max(plan.issues, SCALE_ISSUES)
        self.pipeline()
        reader = tenant(self.env.settings)
        self.say(f"scale: writing {fmt(issues)} issues straight into the read model")
        took = sc.seed_read_model(self.env.settings, reader, issues)
        word = vocabulary()[0]
        (matches,) = sc.match_counts(self.env.settings, reader.workspace_id, [word])
        self.rows.append(Row(f"Seed (scale): {fmt(issues)} issue rows copied into the `issues` read model", "—",
                             f"{took:.0f} s with index builds, VACUUM (ANALYZE)", "info"))
        self.drain()
        word_file = write_words(self.env.run_dir / "scale-word.txt", [word])
        for label, path, words, target in (
                ("filter", FILTER_PATH, None, "≥ 1,500 req/s, p99 ≤ 50 ms"),
                ("search", SEARCH_PATH, word_file, "p99 ≤ 100 ms")):
            for workers in plan.workers:
                self.say(f"scale {label}: {workers} worker(s), {plan.get_clients} clients, {plan.get_s:.0f} s")
                run = sc.http_load(self.env, name=f"api-scale-{label}", factory="bench.asgi:api", workers=workers,
                                   client=plan.client, mode="get", path=path, token=reader.token,
                                   connections=plan.get_clients, seconds=plan.get_s, warmup=plan.warmup_s,
                                   words=words, max_rate=50_000)
                load = run.load
                fast = load.p99_ms <= (50 if label == "filter" else 100)
                ok = fast and load.non_2xx == 0 and load.socket_errors == 0
                shown = path if words is None else SEARCH_PATH.replace("%s", f"{word}")
                what = (f"{fmt(sc.filter_count(self.env.settings, reader.workspace_id))} match" if words is None
                        else f"{fmt(matches)} matches")
                self.rows.append(Row(
                    f"`GET {shown}` over {fmt(issues)} issues in one workspace ({what}), {plan.get_clients} "
                    f"clients, uvicorn {workers} worker(s)", target,
                    f"{fmt(load.rate)} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms "
                    f"(errors {load.non_2xx + load.socket_errors}; {run.cpu_note()})", verdict(ok)))
                self.raw[f"scale_{label}_w{workers}"] = self._http_raw(run)
                self.waits(f"scale {label}, {workers} worker(s)", run)
        text = sc.explain_reads(self.env.settings, reader.workspace_id, word)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "explain-scale.md").write_text(f"# EXPLAIN at {fmt(issues)} issues, one workspace\n\n{text}")
        self.diagnostics.append("EXPLAIN (ANALYZE, BUFFERS) at scale: bench/results/explain-scale.md")

    def explain(self, reader: Tenant) -> None:
        """EXPLAIN ANALYZE of the read statements, written once to bench/results/explain.md."""
        if "explain" in self.raw:
            return
        word = vocabulary()[COMMON + 1]
        text = sc.explain_reads(self.env.settings, reader.workspace_id, word)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "explain.md").write_text(f"# EXPLAIN of the list endpoint's statements ({fmt(self.plan.issues)} "
                                            f"issues, one workspace)\n\n{text}")
        self.raw["explain"] = "bench/results/explain.md"
        self.diagnostics.append("EXPLAIN (ANALYZE, BUFFERS) of the list/search statements: bench/results/explain.md")

    def lag(self) -> None:
        plan = self.plan
        self.pipeline()
        self.drain()
        writer = tenant(self.env.settings)
        self.say(f"projection lag: 1,000 events/s for {plan.lag_s:.0f} s (10 events per transaction)")
        meter, t0 = sc.CpuMeter(self.env.own_pids), time.monotonic()
        lag = sc.projection_lag(self.env, writer, rate=1000, seconds=plan.lag_s)
        cpu = self._cpu(meter, time.monotonic() - t0)
        p50, p99 = sc.percentile(lag.lags_ms, 50), sc.percentile(lag.lags_ms, 99)
        steady = lag.achieved_rate >= 950 and lag.unseen == 0
        self.rows.append(Row(
            f"Projection lag (append commit → `issues` read-model commit) at 1,000 events/s for {plan.lag_s:.0f} s",
            "p99 ≤ 200 ms",
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(lag.lags_ms, default=float('nan')):.0f} ms over "
            f"{fmt(len(lag.lags_ms))} events (achieved {fmt(lag.achieved_rate)} events/s; append p99 "
            f"{sc.percentile(lag.append_ms, 99):.1f} ms; {lag.unseen} never seen; of which commit → on NATS: "
            f"p50 {sc.percentile(lag.relay_ms, 50):.0f} ms, p99 {sc.percentile(lag.relay_ms, 99):.0f} ms; {cpu})",
            verdict(p99 <= 200 and steady)))
        self.raw["lag"] = {"p50": p50, "p90": sc.percentile(lag.lags_ms, 90), "p99": p99,
                           "max": max(lag.lags_ms, default=None), "achieved_rate": lag.achieved_rate,
                           "events": lag.events, "late_batches": lag.late_batches, "unseen": lag.unseen,
                           "append_p50": sc.percentile(lag.append_ms, 50),
                           "append_p99": sc.percentile(lag.append_ms, 99),
                           "relay_p50": sc.percentile(lag.relay_ms, 50), "relay_p99": sc.percentile(lag.relay_ms, 99),
                           "relay_max": max(lag.relay_ms, default=None),
                           "lag_hist_ms": _histogram(lag.lags_ms)}

    def standing(self) -> None:
        """Two API processes cache callers' standing (kept 600 s here, so only the projectors' announcement makes
        them forget): each round revokes an API token through one and times the other's first refusal."""
        self.pipeline()
        self.drain()
        owner = tenant(self.env.settings)
        keep = {"STANDING_CACHE_MAX_AGE_S": "600"}
        (_, a), (_, b) = (self.env.start_uvicorn(name, "bench.asgi:api", 1, keep) for name in ("api-a", "api-b"))
        rounds = 20 if self.plan.quick else 100
        self.say(f"standing: {rounds} API-token revocations through one API process, refusals timed on the other")
        refusal = sc.standing_refusals(f"http://127.0.0.1:{a}", f"http://127.0.0.1:{b}", owner.token, rounds)
        p50, p99 = sc.percentile(refusal.delays_ms, 50), sc.percentile(refusal.delays_ms, 99)
        self.rows.append(Row(
            "Revoked API token refused by another API process (revoke request sent → first 401 there)",
            "p99 ≤ 250 ms",
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(refusal.delays_ms):.0f} ms over {rounds} revocations "
            f"(of which the revoking request itself: p50 {sc.percentile(refusal.command_ms, 50):.0f} ms, "
            f"p99 {sc.percentile(refusal.command_ms, 99):.0f} ms)",
            verdict(p99 <= 250)))
        self.raw["standing"] = {"p50": p50, "p99": p99, "delays_ms": refusal.delays_ms,
                                "command_ms": refusal.command_ms}

    def webhooks(self) -> None:
        """`causeloop webhooks run` delivering issue.created to a local receiver (one endpoint)."""
        from bench import webhooks as wh

        plan = self.plan
        self.pipeline()
        self.drain()
        settings = wh.webhook_settings(self.env.settings)
        writer = tenant(self.env.settings)
        seconds, burst = (5, 2_000) if plan.quick else (20, 10_000)
        with wh.Receiver() as receiver:
            worker = wh.start_worker(self.env, settings)
            wh.create_endpoint(settings, writer, f"http://127.0.0.1:{receiver.port}/hook")
            self.say(f"webhooks: 500 issues/s for {seconds} s, then a burst of {fmt(burst)} issues")
            meter, t0 = sc.CpuMeter(self.env.own_pids), time.monotonic()
            got = wh.measure(self.env, settings, writer, receiver, rate=500, seconds=seconds, burst=burst)
            cpu = self._cpu(meter, time.monotonic() - t0)
            self.env.stop(worker)
        p50, p99 = sc.percentile(got.latencies_ms, 50), sc.percentile(got.latencies_ms, 99)
        clean = got.duplicates == 0 and got.missing == 0
        self.rows.append(Row(
            f"Webhook deliveries to a local receiver (`causeloop webhooks run`), burst of {fmt(got.burst_events)} "
            "issue.created", "≥ 500 deliveries/s",
            f"{fmt(got.burst_rate)} deliveries/s (first commit → last arrival {got.burst_seconds:.1f} s; "
            f"duplicates {got.duplicates}, missing {got.missing}; {cpu})", verdict(got.burst_rate >= 500 and clean)))
        self.rows.append(Row(
            f"Webhook latency (event commit → receiver has the POST) at {fmt(got.steady_rate)} issues/s for "
            f"{seconds} s", "p99 ≤ 1 s",
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(got.latencies_ms, default=float('nan')):.0f} ms over "
            f"{fmt(len(got.latencies_ms))} deliveries", verdict(p99 <= 1000 and clean)))
        self.raw["webhooks"] = {"p50": p50, "p99": p99, "burst_rate": got.burst_rate,
                                "steady_rate": got.steady_rate, "duplicates": got.duplicates,
                                "missing": got.missing, "lat_hist_ms": _histogram(got.latencies_ms)}

    def rebuild(self) -> None:
        self.ensure_seeded()
        self.drain()
        self.say("rebuild issues (causeloop projections rebuild issues)")
        meter, t0 = sc.CpuMeter(self.env.own_pids), time.monotonic()
        rebuilt = sc.rebuild(self.env)
        cpu = self._cpu(meter, time.monotonic() - t0, breakdown=False)
        self.rows.append(Row(
            f"`causeloop projections rebuild issues` over {fmt(rebuilt.events)} events "
            f"({fmt(self.plan.issues)} issues)",
            "≥ 10,000 events/s",
            f"{fmt(rebuilt.rate)} events/s ({rebuilt.seconds:.1f} s; {rebuilt.wall_s:.1f} s with process start; "
            f"{cpu})",
            verdict(rebuilt.rate >= 10_000)))
        self.raw["rebuild"] = rebuilt.__dict__
        maintenance = sc.table_maintenance(self.env.settings)
        self.raw["after_rebuild_tables"] = maintenance
        if "get" in self.plan.only and self.seeded is not None:
            analyzed = bool(maintenance.get("issues", {}).get("last_analyze")
                            or maintenance.get("issues", {}).get("last_autoanalyze"))
            seconds = max(3.0, self.plan.get_s / 2)
            self.say(f"GET filter right after the rebuild (tables analyzed: {analyzed}), 1 worker, {seconds:.0f} s")
            run = sc.http_load(self.env, name="api-get-after-rebuild", factory="bench.asgi:api", workers=1,
                               client=self.plan.client, mode="get", path=FILTER_PATH, token=self.seeded.token,
                               connections=self.plan.get_clients, seconds=seconds, warmup=self.plan.warmup_s,
                               words=None, max_rate=50_000)
            load = run.load
            ok = load.rate >= 1500 and load.p99_ms <= 50 and load.non_2xx == 0 and load.socket_errors == 0
            self.rows.append(Row(
                f"`GET {FILTER_PATH}` right after the rebuild swapped tables in (statistics: "
                f"{'yes' if analyzed else 'none — never ANALYZEd'}), uvicorn 1 worker",
                "≥ 1,500 req/s, p99 ≤ 50 ms (info)",
                f"{fmt(load.rate)} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms "
                f"(errors {load.non_2xx + load.socket_errors}; {run.cpu_note()})", f"{verdict(ok)} (info)"))
            self.raw["get_filter_after_rebuild_w1"] = self._http_raw(run)
            self.waits("GET filter right after rebuild, 1 worker", run)

    @staticmethod
    def _cpu(meter: sc.CpuMeter, seconds: float, breakdown: bool = True) -> str:
        """CPU over a non-HTTP measurement; processes that exited meanwhile (a rebuild's own process and its
        Postgres backend) are not in the per-group breakdown, so it can be turned off."""
        shares = meter.shares(seconds)
        disturbed = "DISTURBED by other processes — " if shares.get("other", 0.0) >= 0.10 else ""
        if not breakdown:
            return f"{disturbed}CPU {meter.busy():.0%} busy, other processes {shares['other']:.2f} cores"
        return (f"{disturbed}CPU {meter.busy():.0%} busy — cores: bench processes {shares['bench']:.2f}, "
                f"postgres {shares['postgres']:.2f}, nats {shares['nats-server']:.2f}, other {shares['other']:.2f}")

    @staticmethod
    def _http_raw(run: sc.HttpRun) -> dict[str, Any]:
        return {"workers": run.workers, "cpu_busy": run.cpu_busy, "steal": run.steal, "cpu_shares": run.shares,
                "server_cpu_s": run.server_cpu_s, "client_cpu_s": run.load.client_cpu_s, "rate": run.load.rate,
                "waits": run.waits, "load": run.load.raw}


def _histogram(values: list[float]) -> dict[str, int]:
    edges = [10, 25, 50, 100, 200, 500, 1000, 2000]
    counts = {f"<={e}": 0 for e in edges} | {">2000": 0}
    for v in values:
        key = next((f"<={e}" for e in edges if v <= e), ">2000")
        counts[key] += 1
    return counts


def machine_notes(env: BenchEnv, plan: Plan, background: float) -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    with psycopg.connect(env.settings.database_url, autocommit=True) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        pg_settings = ", ".join(
            f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}"  # type: ignore[index]
            for name in ("shared_buffers", "synchronous_commit", "max_connections", "autovacuum"))
    nats_version = asyncio.run(_nats_version(env.settings.nats_url))
    client = ("wrk 4.1 (Debian), closed loop, 2 threads, Lua script bench/load.lua" if plan.client == "wrk"
              else "bench/pyload.py (asyncio raw HTTP/1.1 keep-alive, 1 process), closed loop")
    return [
        f"code: {_git_state()}",
        f"machine: {os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.0f} GB RAM; load generator, API, "
        "relay, projector, Postgres and NATS all share these cores",
        f"Python {platform.python_version()}, PostgreSQL {pg} ({pg_settings}), nats-server {nats_version}",
        f"HTTP load: {client}; uvicorn --loop uvloop --http httptools --no-access-log; each run after a "
        f"{plan.warmup_s:.0f} s warm-up on a fresh server; rates count 2xx responses only",
        f"run: {'quick' if plan.quick else 'full'}; POST {plan.post_s:.0f} s, GET {plan.get_s:.0f} s, "
        f"baselines {plan.baseline_s:.0f} s, lag {plan.lag_s:.0f} s; seeded issues: {fmt(plan.issues)}; "
        f"schema {env.settings.database_schema}, stream {env.settings.nats_stream}",
        "API settings as shipped (DB_POOL_SIZE=10, GROUP_COMMIT_MAX_BATCH=500), except RATE_LIMIT_PER_MINUTE=1e9 "
        "(the limiter still counts every request in Postgres)",
        f"background CPU just before the run (2 s, nothing of the bench running): {background:.0%} busy; rows "
        "marked DISTURBED had other processes using ≥ 0.1 cores during the measurement",
        "after seeding, the bench runs VACUUM (ANALYZE) on the schema's tables and a CHECKPOINT (what autovacuum "
        "and the checkpointer would do after a bulk load; autovacuum setting shown above)",
    ]


def _git_state() -> str:
    """The commit measured, and whether the work tree differed from it (the numbers belong to the files run)."""
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git unavailable)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"commit {commit}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else " (clean)")


async def _nats_version(url: str) -> str:
    import nats

    try:
        nc = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=1)
    except Exception as exc:
        return f"unreachable ({exc})"
    try:
        return str(nc._server_info.get("version", "?"))
    finally:
        await nc.close()


def render(rows: list[Row], notes: list[str], diagnostics: list[str], started: datetime) -> str:
    lines = [f"# Causeloop bench — {started.strftime('%Y-%m-%d %H:%M UTC')}", "",
             "| benchmark | target | measured | pass/fail |", "| --- | --- | --- | --- |"]
    lines += [f"| {r.benchmark} | {r.target} | {r.measured} | {r.verdict} |" for r in rows]
    lines += ["", *(f"- {note}" for note in notes), ""]
    if diagnostics:
        lines += ["## Diagnostics", "", *(f"- {d}" for d in diagnostics), ""]
    return "\n".join(lines)


def wait_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """The machine is shared: wait (bounded) until it is nearly idle before measuring; returns the last reading."""
    deadline = time.monotonic() + max_wait
    while True:
        meter = sc.CpuMeter()
        time.sleep(2)
        busy = meter.busy()
        if busy < threshold or time.monotonic() >= deadline:
            return busy
        print(f"[bench] machine {busy:.0%} busy before starting; waiting for it to settle", file=sys.stderr,
              flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args, plan = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # unwind: stop the processes, drop the schema and stream
    started = datetime.now(UTC)
    t0 = time.monotonic()
    background_busy = wait_quiet(args.quiet_wait)
    with bench_env(args.database_url, args.nats_url, keep=args.keep) as env:
        bench = Bench(env, plan)
        bench.say(f"schema {env.settings.database_schema}, stream {env.settings.nats_stream}, logs in {env.run_dir}")
        migrate(env.settings)
        order = [("baselines", bench.baselines), ("get", bench.get), ("search", bench.search),
                 ("rebuild", bench.rebuild), ("lag", bench.lag), ("standing", bench.standing), ("post", bench.post),
                 ("webhooks", bench.webhooks), ("sync", bench.sync),
                 ("ingest_batch", bench.ingest_batch), ("ingest_repeats", bench.ingest_repeats),
                 ("ingest_events", bench.ingest_events), ("scale", bench.scale)]
        for name, fn in order:
            if name in plan.only:
                bench.guarded(name, fn)
        notes = machine_notes(env, plan, background_busy)
    order_of = {"post": 0, "baselines": 1, "get": 2, "search": 3, "lag": 4, "standing": 5, "rebuild": 6,
                "webhooks": 7, "sync": 7}

    def rank(row: Row) -> int:
        b = row.benchmark
        if b.startswith("`POST"):
            return order_of["post"]
        if b.startswith("Baseline"):
            return order_of["baselines"]
        if b.startswith("Seed"):
            return 8
        if b.startswith("Webhook"):
            return order_of["webhooks"]
        if "after the rebuild" in b:
            return order_of["rebuild"]
        if "q=<" in b:
            return order_of["search"]
        if b.startswith("`GET"):
            return order_of["get"]
        if b.startswith("Projection lag"):
            return order_of["lag"]
        if b.startswith("Revoked"):
            return order_of["standing"]
        if "rebuild" in b:
            return order_of["rebuild"]
        return 9

    rows = sorted(bench.rows, key=rank)
    notes.append(f"bench wall time {time.monotonic() - t0:.0f} s")
    text = render(rows, notes, bench.diagnostics, started)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(text)
    (RESULTS / "latest.json").write_text(json.dumps({"rows": [r.__dict__ for r in rows], "notes": notes,
                                                     "raw": bench.raw}, indent=2, default=str))
    print(text)
    errors = [r for r in rows if r.measured.startswith("error:")]
    if errors or args.keep:
        print(f"bench: process logs kept in {env.run_dir}", file=sys.stderr)
    else:
        shutil.rmtree(env.run_dir, ignore_errors=True)
    return 0 if all(r.verdict != "FAIL" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
