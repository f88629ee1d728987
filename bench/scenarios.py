"""The measurements. Each returns plain numbers; bench/__main__.py turns them into table rows."""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from adapters.codec import EVENT_TYPES
from adapters.event_store import EVENTS_TABLE, EventStore, event_store_env
from adapters.settings import Settings
from bench.data import IssueFactory, Tenant
from bench.harness import VENV_BIN, BenchEnv
from bench.load import LoadResult, run_load
from projections import checkpoints
from projections.issues.projector import _ISSUE_COLUMNS, _count_key, _row
from projections.issues.view import fold
from projections.registry import PROJECTIONS

# -- small helpers ------------------------------------------------------------------------------------------------


def connect(settings: Settings) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(settings.database_url, autocommit=True,
                           options=f"-c search_path={settings.database_schema}")


def head(settings: Settings) -> int:
    with connect(settings) as conn:
        row = conn.execute(f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}").fetchone()
        return int(row[0]) if row else 0


def projection_position(settings: Settings, name: str = "issues") -> int:
    with connect(settings) as conn:
        row = conn.execute("SELECT position FROM projection_checkpoints WHERE name = %s", (name,)).fetchone()
        return int(row[0]) if row else 0


def caught_up(settings: Settings, target: int, names: Sequence[str]) -> bool:
    """Every named projection has every event of its categories up to `target` (other categories' events never
    move a single-category projection's checkpoint, so "checkpoint ≥ target" would wait forever for them)."""
    with connect(settings) as conn:
        checkpoints_now = dict(conn.execute("SELECT name, position FROM projection_checkpoints").fetchall())
        for name in names:
            topics = [t for t, cls in EVENT_TYPES.items() if cls.category in PROJECTIONS[name].categories]
            pending = conn.execute(
                f"SELECT 1 FROM {EVENTS_TABLE} WHERE notification_id > %s AND notification_id <= %s"
                " AND topic = ANY(%s) LIMIT 1", (int(checkpoints_now.get(name, 0)), target, topics)).fetchone()
            if pending is not None:
                return False
    return True


def wait_caught_up(settings: Settings, target: int, timeout: float, alive: Callable[[], bool] = lambda: True,
                   every_projection: bool = False) -> float:
    """Seconds until the issues projection (or every projection) has everything up to `target`; raises after
    `timeout`."""
    names = list(PROJECTIONS) if every_projection else ["issues"]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if caught_up(settings, target, names):
            return time.monotonic() - started
        if not alive():
            raise RuntimeError("a pipeline process died while waiting for the projection")
        time.sleep(0.05)
    raise TimeoutError(f"{', '.join(names)} did not reach position {target} within {timeout:.0f}s "
                       f"(issues at {projection_position(settings)})")


class CpuMeter:
    """Whole-machine CPU between construction and busy()/shares(), from /proc: busy fraction, hypervisor steal,
    and which processes used it (so a run disturbed by something else on the machine shows it)."""

    def __init__(self, own_pids: Callable[[], set[int]] = set) -> None:
        self._own_pids = own_pids
        self._start = self._read()
        self._procs = self._per_process()

    @staticmethod
    def _read() -> tuple[int, int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]
        steal = fields[7] if len(fields) > 7 else 0
        return sum(fields) - idle, sum(fields), steal

    @staticmethod
    def _per_process() -> dict[int, tuple[str, float]]:
        ticks = os.sysconf("SC_CLK_TCK")
        out: dict[int, tuple[str, float]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            comm = text[text.index("(") + 1:text.rindex(")")]
            fields = text.rsplit(")", 1)[1].split()
            out[int(entry)] = (comm, (int(fields[11]) + int(fields[12])) / ticks)
        return out

    def busy(self) -> float:
        busy, total, _ = self._read()
        d_total = total - self._start[1]
        return (busy - self._start[0]) / d_total if d_total else 0.0

    def steal(self) -> float:
        _, total, steal = self._read()
        d_total = total - self._start[1]
        return (steal - self._start[2]) / d_total if d_total else 0.0

    def shares(self, seconds: float) -> dict[str, float]:
        """Cores used per group: bench (processes the bench started, and itself), postgres, nats-server, other."""
        now = self._per_process()
        own = self._own_pids() | {os.getpid()}
        groups: dict[str, float] = {"bench": 0.0, "postgres": 0.0, "nats-server": 0.0, "kernel": 0.0, "other": 0.0}
        for pid, (comm, cpu) in now.items():
            used = cpu - self._procs.get(pid, (comm, 0.0))[1]
            if used <= 0:
                continue
            if pid in own:
                group = "bench"
            elif comm in ("postgres", "nats-server"):
                group = comm
            elif comm.startswith(("kworker", "ksoftirq", "rcu_", "kdamond", "jbd2", "kswapd")):
                group = "kernel"
            else:
                group = "other"
            groups[group] += used / seconds if seconds else 0.0
        return groups


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


# -- baselines ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def raw_insert(settings: Settings, seconds: float, max_rows: int = 200_000) -> Rate:
    """One connection, one single-row INSERT per autocommit transaction, back to back."""
    payload = os.urandom(400)
    latencies: list[float] = []
    with connect(settings) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_raw_insert (id bigserial PRIMARY KEY, payload bytea NOT NULL)")
        started = time.perf_counter()
        deadline = started + seconds
        count = 0
        while count < max_rows and time.perf_counter() < deadline:
            t = time.perf_counter()
            conn.execute("INSERT INTO bench_raw_insert (payload) VALUES (%s)", (payload,))
            latencies.append(time.perf_counter() - t)
            count += 1
        elapsed = time.perf_counter() - started
    return Rate(count, elapsed, percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000)


def eventsourcing_save(settings: Settings, seconds: float, max_saves: int = 100_000) -> Rate:
    """A plain eventsourcing Application with a trivial Aggregate: one new aggregate per save(), back to back."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    class Note(Aggregate):
        def __init__(self, text: str) -> None:
            self.text = text

    class BenchBaseline(Application):  # type: ignore[type-arg]
        pass

    env = event_store_env(settings, create_table=True, pool_size=1)
    app = BenchBaseline(env=env)
    latencies: list[float] = []
    try:
        started = time.perf_counter()
        deadline = started + seconds
        count = 0
        while count < max_saves and time.perf_counter() < deadline:
            t = time.perf_counter()
            app.save(Note(text="hello"))
            latencies.append(time.perf_counter() - t)
            count += 1
        elapsed = time.perf_counter() - started
    finally:
        app.close()
    return Rate(count, elapsed, percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000)


# -- Postgres wait sampling ----------------------------------------------------------------------------------------


class WaitSampler:
    """Samples pg_stat_activity every 100 ms: what the database's non-idle sessions are doing (or waiting on)."""

    def __init__(self, settings: Settings, interval: float = 0.1, max_samples: int = 3000) -> None:
        self.settings = settings
        self.interval = interval
        self.max_samples = max_samples
        self.samples = 0
        self.by_wait: dict[str, int] = {}
        self.by_query: dict[tuple[str, str], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wait-sampler", daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
            while not self._stop.is_set() and self.samples < self.max_samples:
                rows = conn.execute(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), state, "
                    "regexp_replace(left(query, 70), '\\s+', ' ', 'g') FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend' AND state <> 'idle' AND query NOT LIKE 'LISTEN%%'"
                ).fetchall()
                self.samples += 1
                for wait, state, query in rows:
                    label = f"{wait} ({state})" if state != "active" else wait
                    self.by_wait[label] = self.by_wait.get(label, 0) + 1
                    key = (label, query.strip())
                    self.by_query[key] = self.by_query.get(key, 0) + 1
                time.sleep(self.interval)

    def summary(self, top: int = 5) -> dict[str, Any]:
        n = max(1, self.samples)
        return {
            "samples": self.samples,
            "avg_sessions_by_wait": {k: round(v / n, 2) for k, v in
                                     sorted(self.by_wait.items(), key=lambda kv: -kv[1])[:top]},
            "top_queries": [{"wait": k[0], "query": k[1], "avg_sessions": round(v / n, 2)}
                            for k, v in sorted(self.by_query.items(), key=lambda kv: -kv[1])[:top]],
        }


# -- HTTP ---------------------------------------------------------------------------------------------------------


@dataclass
class HttpRun:
    load: LoadResult
    workers: int
    cpu_busy: float
    server_cpu_s: float
    waits: dict[str, Any] = field(default_factory=dict)
    steal: float = 0.0
    shares: dict[str, float] = field(default_factory=dict)

    def cpu_note(self) -> str:
        """Where the 2 cores went during the measured run, in cores."""
        s = self.shares
        disturbed = "DISTURBED by other processes — " if s.get("other", 0.0) >= 0.10 else ""
        return (f"{disturbed}CPU {self.cpu_busy:.0%} busy — cores: API+relay+projector {s.get('bench', 0.0):.2f}, "
                f"postgres {s.get('postgres', 0.0):.2f}, nats {s.get('nats-server', 0.0):.2f}, "
                f"{self.load.client} {self.load.client_cpu_share:.2f}, other {s.get('other', 0.0):.2f}; "
                f"steal {self.steal:.0%}")


def http_load(env: BenchEnv, *, name: str, factory: str, workers: int, client: str, mode: str, path: str,
              token: str | None, connections: int, seconds: float, warmup: float, words: Path | None,
              max_rate: float, after: Callable[[], None] | None = None) -> HttpRun:
    """Start uvicorn, warm up, measure one closed-loop run, stop uvicorn."""
    proc, port = env.start_uvicorn(f"{name}-w{workers}", factory, workers)
    try:
        common = dict(client=client, port=port, mode=mode, path=path, token=token, connections=connections,
                      words_file=words)
        if warmup > 0:
            run_load(**common, duration=warmup, max_requests=int(max_rate * warmup) + 1)  # type: ignore[arg-type]
            if after is not None:
                after()
        cpu = CpuMeter(env.own_pids)
        server_before = proc.cpu_seconds()
        t0 = time.monotonic()
        with WaitSampler(env.settings) as sampler:
            load = run_load(**common, duration=seconds,  # type: ignore[arg-type]
                            max_requests=int(max_rate * seconds) + 1)
        busy, steal, shares = cpu.busy(), cpu.steal(), cpu.shares(time.monotonic() - t0)
        server_cpu = proc.cpu_seconds() - server_before
        if not proc.alive():
            raise RuntimeError(f"{proc.name} died during the run:\n{proc.tail()}")
    finally:
        env.stop(proc)
    return HttpRun(load=load, workers=workers, cpu_busy=busy, server_cpu_s=server_cpu, waits=sampler.summary(),
                   steal=steal, shares=shares)


# -- seeding ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    issues: int
    events: int
    append_s: float
    caught_up_s: float  # from the first append until the projection had every event

    @property
    def append_rate(self) -> float:
        return self.events / self.append_s if self.append_s else 0.0

    @property
    def pipeline_rate(self) -> float:
        return self.events / self.caught_up_s if self.caught_up_s else 0.0


def seed(env: BenchEnv, tenant: Tenant, issues: int, batch: int = 1000, timeout: float = 900) -> Seeded:
    """Append `issues` issue streams straight to the event store (one transaction per `batch` issues) while
    the relay and projector are running, then wait for the projection to have all of it."""
    factory = IssueFactory(tenant.workspace_id, tenant.user_id)
    store = EventStore(env.settings, pool_size=2)
    events = 0
    last = 0
    try:
        started = time.monotonic()
        for chunk in factory.history(issues, batch):
            positions = store.append(chunk)
            events += len(chunk)
            last = max(last, *positions)
        append_s = time.monotonic() - started
    finally:
        store.close()
    wait_caught_up(env.settings, last, timeout, alive=lambda: all(p.alive() for p in env.procs))
    caught_up_s = time.monotonic() - started
    vacuum_analyze(env.settings)
    return Seeded(issues=issues, events=events, append_s=append_s, caught_up_s=caught_up_s)


def vacuum_analyze(settings: Settings) -> None:
    """What autovacuum does to a table after a bulk load (statistics and the visibility map)."""
    with connect(settings) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s",
                                             (settings.database_schema,)).fetchall()]
        for table in tables:
            conn.execute(f'VACUUM (ANALYZE) "{table}"')
        conn.execute("CHECKPOINT")  # write the bulk load out now rather than during the next measurement


def table_maintenance(settings: Settings) -> dict[str, Any]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT relname, last_vacuum, last_autovacuum, last_analyze, last_autoanalyze, n_live_tup "
            "FROM pg_stat_user_tables WHERE schemaname = %s AND relname LIKE 'issue%%'",
            (settings.database_schema,)).fetchall()
    return {r[0]: {"last_vacuum": r[1], "last_autovacuum": r[2], "last_analyze": r[3], "last_autoanalyze": r[4],
                   "n_live_tup": r[5]} for r in rows}


def probe_pipeline(env: BenchEnv, tenant: Tenant, timeout: float = 90) -> float:
    """Append one event and wait until the issues projection has it: the relay and projector are up."""
    factory = IssueFactory(tenant.workspace_id, tenant.user_id, seed=3)
    store = EventStore(env.settings, pool_size=1)
    try:
        started = time.monotonic()
        (position,) = store.append([factory.opened(datetime.now(UTC))])
    finally:
        store.close()
    wait_caught_up(env.settings, position, timeout, alive=lambda: all(p.alive() for p in env.procs))
    return time.monotonic() - started


def match_counts(settings: Settings, workspace_id: str, words: list[str]) -> list[int]:
    with connect(settings) as conn:
        counts = []
        for word in words:
            row = conn.execute("SELECT count(*) FROM issues WHERE workspace_id = %s AND "
                               "search @@ websearch_to_tsquery('english', %s)", (workspace_id, word)).fetchone()
            counts.append(int(row[0]) if row else 0)
        return counts


def filter_count(settings: Settings, workspace_id: str) -> int:
    with connect(settings) as conn:
        row = conn.execute("SELECT count(*) FROM issues WHERE workspace_id = %s AND status = 'open' AND "
                           "severity = 'high'", (workspace_id,)).fetchone()
        return int(row[0]) if row else 0


# -- projection lag -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lag:
    target_rate: float
    events: int
    seconds: float
    lags_ms: list[float]
    append_ms: list[float]
    late_batches: int  # batches the writer started more than one interval behind schedule
    unseen: int
    relay_ms: list[float] = field(default_factory=list)  # append commit -> message seen on NATS

    @property
    def achieved_rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def projection_lag(env: BenchEnv, tenant: Tenant, rate: float, seconds: float, batch: int = 10,
                   warmup: float = 2.0, drain_timeout: float = 60) -> Lag:
    """Append at a steady `rate` events/s in transactions of `batch` events; each event's lag is the time from
    its append returning (committed) to the arrival of the first checkpoint NOTIFY at or past its position
    (the projector's transaction committed). Both instants are taken on this process's clock. The first
    `warmup` seconds run at the same rate but are not counted."""
    settings = env.settings
    factory = IssueFactory(tenant.workspace_id, tenant.user_id, seed=23)
    notifications: list[tuple[float, int]] = []
    stop = threading.Event()
    ready = threading.Event()
    channel = checkpoints.channel(settings.database_schema)

    def listen() -> None:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(f'LISTEN "{channel}"')
            ready.set()
            while not stop.is_set():
                for note in conn.notifies(timeout=0.2):
                    name, _, position = note.payload.rpartition(":")
                    if name == "issues":
                        notifications.append((time.time(), int(position)))

    published: list[tuple[float, int]] = []
    nats_ready = threading.Event()

    def watch_nats() -> None:
        """A plain core-NATS subscriber on the stream's subjects: when did the relay publish each position?"""
        import asyncio

        import nats

        async def run() -> None:
            nc = await nats.connect(settings.nats_url, name="bench-lag-watch")

            async def on_message(msg: Any) -> None:
                position = int((msg.headers or {}).get("Causeloop-Position", "0"))
                published.append((time.time(), position))

            await nc.subscribe(f"{settings.subject_prefix}.>", cb=on_message)
            await nc.flush()
            nats_ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
            await nc.close()

        asyncio.run(run())

    listener = threading.Thread(target=listen, name="lag-listener", daemon=True)
    listener.start()
    watcher = threading.Thread(target=watch_nats, name="lag-nats", daemon=True)
    watcher.start()
    ready.wait(10)
    nats_ready.wait(10)
    store = EventStore(settings, pool_size=2)
    committed: list[tuple[float, list[int]]] = []
    append_ms: list[float] = []
    late = 0
    interval = batch / rate
    warm_batches = int(rate * warmup / batch)
    batches = int(rate * seconds / batch)
    try:
        started = time.monotonic()
        measured_from = started
        for i in range(warm_batches + batches):
            if i == warm_batches:
                measured_from = time.monotonic()
            due = started + i * interval
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > interval and i >= warm_batches:
                late += 1
            events = [factory.opened(datetime.now(UTC)) for _ in range(batch)]
            t0 = time.perf_counter()
            positions = store.append(events)
            if i >= warm_batches:
                append_ms.append((time.perf_counter() - t0) * 1000)
                committed.append((time.time(), positions))
        elapsed = time.monotonic() - measured_from
        last = max(p for _, ps in committed for p in ps)
        with contextlib.suppress(TimeoutError):
            wait_caught_up(settings, last, drain_timeout)
        time.sleep(0.3)  # let the last NOTIFY arrive
    finally:
        stop.set()
        listener.join(5)
        watcher.join(5)
        store.close()
    seen_at = {position: at for at, position in published}
    relay_ms = [(seen_at[p] - at) * 1000 for at, ps in committed for p in ps if p in seen_at]
    notes = sorted(notifications, key=lambda n: n[1])
    lags: list[float] = []
    unseen = 0
    positions_sorted = [p for _, p in notes]
    # earliest arrival among notifications at or past each position (suffix minimum over position order)
    earliest = [0.0] * len(notes)
    best = float("inf")
    for j in range(len(notes) - 1, -1, -1):
        best = min(best, notes[j][0])
        earliest[j] = best
    for at, positions in committed:
        for position in positions:
            j = bisect.bisect_left(positions_sorted, position)
            if j == len(notes):
                unseen += 1
                continue
            lags.append((earliest[j] - at) * 1000)
    return Lag(target_rate=rate, events=batches * batch, seconds=elapsed, lags_ms=lags, append_ms=append_ms,
               late_batches=late, unseen=unseen, relay_ms=relay_ms)


# -- rebuild ------------------------------------------------------------------------------------------------------


@dataclass
class Refusals:
    delays_ms: list[float]
    command_ms: list[float]


def standing_refusals(a: str, b: str, owner_token: str, rounds: int) -> Refusals:
    """Per round: create an API token through A, have B admit it twice (cached), revoke it through A, then ask B
    every 2 ms until it answers 401; the delay runs from sending the revocation."""
    owner = {"Authorization": f"Bearer {owner_token}"}
    delays, commands = [], []
    with httpx.Client(timeout=30) as client:
        for n in range(rounds):
            created = client.post(f"{a}/v1/api-tokens", json={"name": f"standing-{n}", "scopes": ["issues:read"]},
                                  headers=owner)
            created.raise_for_status()
            token = created.json()
            bearer = {"Authorization": f"Bearer {token['secret']}"}
            for _ in range(2):
                client.get(f"{b}/v1/issues?limit=1", headers=bearer).raise_for_status()
            started = time.monotonic()
            client.delete(f"{a}/v1/api-tokens/{token['id']}", headers=owner).raise_for_status()
            commands.append((time.monotonic() - started) * 1000)
            deadline = started + 30
            while client.get(f"{b}/v1/issues?limit=1", headers=bearer).status_code != 401:
                if time.monotonic() > deadline:
                    raise RuntimeError("the other API process never refused the revoked token")
                time.sleep(0.002)
            delays.append((time.monotonic() - started) * 1000)
    return Refusals(delays_ms=delays, command_ms=commands)


@dataclass(frozen=True)
class Rebuilt:
    events: int
    seconds: float
    wall_s: float
    output: str

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


_REBUILT = re.compile(r"rebuilt \w+: (\d+) events up to position (\d+) in ([\d.]+)s")


def rebuild(env: BenchEnv, timeout: float = 1800) -> Rebuilt:
    """`causeloop projections rebuild issues` as an operator runs it, with the live projector still running."""
    started = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "causeloop"), "projections", "rebuild", "issues"], env=env.child_env(),
                          capture_output=True, text=True, timeout=timeout, cwd=str(Path(__file__).parent.parent))
    wall = time.monotonic() - started
    match = _REBUILT.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"rebuild failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return Rebuilt(events=int(match.group(1)), seconds=float(match.group(3)), wall_s=wall,
                   output=done.stdout.strip())


# -- group-commit evidence ----------------------------------------------------------------------------------------


def transaction_sizes(settings: Settings, after: int, upto: int) -> dict[str, float]:
    """Events per event-store transaction in a position range (rows inserted by one transaction share xmin)."""
    with connect(settings) as conn:
        rows = conn.execute(
            f"SELECT count(*) FROM {EVENTS_TABLE} WHERE notification_id > %s AND notification_id <= %s "
            "GROUP BY xmin::text", (after, upto)).fetchall()
    sizes = [int(r[0]) for r in rows]
    if not sizes:
        return {"transactions": 0, "mean": 0.0, "p50": 0.0, "max": 0.0}
    return {"transactions": len(sizes), "mean": statistics.fmean(sizes), "p50": percentile(sizes, 50),
            "max": max(sizes)}


# -- EXPLAIN evidence ---------------------------------------------------------------------------------------------


async def _explain_list(settings: Settings, workspace_id: str, filters: Any, sort: str, rls: bool) -> list[str]:
    """Run the list query exactly as the API does (projections.issues.queries.list_issues), recording its
    statements, then EXPLAIN ANALYZE each one in the same transaction."""

    from psycopg.rows import dict_row

    from adapters.postgres import READER_ROLE, Statement
    from adapters.postgres import connect as connect_async
    from projections.issues import queries

    conn = await connect_async(settings)
    statements: list[str] = []

    async def recording_reader(batch: Sequence[Statement]) -> list[list[dict[str, Any]]]:
        results = []
        for statement in batch:
            cur = psycopg.AsyncClientCursor(conn, row_factory=dict_row)
            statements.append(cur.mogrify(statement.text.encode(), statement.params))
            await cur.execute(statement.text.encode(), statement.params)
            results.append(await cur.fetchall())
        return results

    out: list[str] = []
    try:
        async with conn.transaction():
            if rls:
                await conn.execute("SELECT set_config('role', %s, true), set_config('causeloop.workspace_id', %s, "
                                   "true)", (READER_ROLE, workspace_id))
            await queries.list_issues(recording_reader, workspace_id, filters, sort=sort, descending=True, limit=26,
                                      after=None, rank_window=settings.search_rank_window)
            for text in statements:
                if text.lstrip().upper().startswith("EXPLAIN"):
                    continue
                cur = await conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {text}".encode())
                plan = [str(next(iter(row.values()))) for row in await cur.fetchall()]
                out += ["```sql", text, "```", "", "```", *plan, "```", ""]
    finally:
        await conn.close()
    return out


def explain_reads(settings: Settings, workspace_id: str, word: str) -> str:
    """EXPLAIN ANALYZE of the list endpoint's statements as the API runs them (reader role, RLS on), plus the
    search statements as a superuser (RLS bypassed) for comparison."""
    import asyncio

    from projections.issues.queries import IssueFilters

    cases = [("GET ?status=open&severity=high", IssueFilters(status=["open"], severity=["high"]), "created_at",
              (True,)),
             (f"GET ?q={word}", IssueFilters(q=word), "rank", (True, False))]
    out: list[str] = []
    for title, filters, sort, modes in cases:
        for rls in modes:
            who = "as causeloop_reader (RLS on, as the API runs it)" if rls else "as superuser (RLS bypassed)"
            out += [f"### {title} — {who}", ""]
            out += asyncio.run(_explain_list(settings, workspace_id, filters, sort, rls))
    return "\n".join(out)


# -- reads at scale -----------------------------------------------------------------------------------------------

def seed_read_model(settings: Settings, tenant: Tenant, issues: int, batch: int = 20_000) -> float:
    """`issues` issue rows written straight into the `issues` read model (and its `issue_counts`), as the
    projector would write them from the domain's own events (IssueFactory → fold → the projector's row), but
    without the event store: appending and projecting a million streams takes far longer than the run.

    The table's secondary indexes are dropped for the load and re-created afterwards from their definitions
    (as a bulk load would be done); returns the seconds it took."""
    started = time.monotonic()
    factory = IssueFactory(tenant.workspace_id, tenant.user_id, seed=17)
    counts: dict[tuple[str, str, str, str], int] = {}
    columns = ", ".join(name for name, _ in _ISSUE_COLUMNS)
    with connect(settings) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'issues' "
            "AND indexname <> 'issues_pkey'", (settings.database_schema,)).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for chunk in factory.history(issues, batch):
            views = []
            streams: dict[str, list[Any]] = {}
            for event in chunk:
                streams.setdefault(str(event.originator_id), []).append(event)
            for events in streams.values():
                view = fold(None, events)
                assert view is not None
                views.append(view)
                key = _count_key(view)
                counts[key] = counts.get(key, 0) + 1
            with conn.cursor().copy(f"COPY issues ({columns}) FROM STDIN") as copy:
                for view in views:
                    copy.write_row(_row(view))
        conn.execute("DELETE FROM issue_counts WHERE workspace_id = %s", (tenant.workspace_id,))
        with conn.cursor().copy("COPY issue_counts (workspace_id, status, severity, stage, n) FROM STDIN") as copy:
            for (workspace_id, status, severity, stage), n in counts.items():
                copy.write_row((workspace_id, status, severity, stage, n))
        conn.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in indexes:  # as they were, storage parameters included
            conn.execute(definition)
    vacuum_analyze(settings)
    return time.monotonic() - started
