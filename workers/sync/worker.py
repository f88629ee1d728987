"""The sync worker: executes queued sync runs, and schedules runs from each connector's cron.

Exclusion: a run executes only while its worker holds the connector's Postgres session advisory lock, so one
connector never syncs twice at once, whatever the number of worker processes (the lock dies with the session:
a crashed worker frees its connectors). The run's state is re-read from the event store under the lock and
`SyncRunStarted` is appended with the version it read, so a run never starts twice either.

Scheduling: each tick reads the connectors read model; a connector is due at the first cron time after its last
successful sync (or its creation), or, after failures, at last failure + backoff (base × 2^(n−1), capped). The
scheduled run's stream id is derived from the connector and the due time, so two schedulers deciding the same
run append to the same new stream and the second one is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from adapters import cron
from adapters.event_store import EventStore
from adapters.postgres import AsyncConn, connect, create_pool, writer_transaction
from adapters.providers.clients import Client, client_for
from adapters.providers.http import Http, Policy, ProviderError
from adapters.secret_box import SecretBox, master_key
from adapters.settings import Settings
from commands.caller import Caller
from commands.connectors import BOX_PURPOSE, ConnectorCommands, run_id_of
from commands.errors import NotFound
from commands.group_commit import ConcurrencyConflict, GroupCommitter
from commands.ingestion import IngestionCommands
from commands.runner import CommandRunner
from domain.connectors.connector import Connector, SyncRun
from domain.connectors.events import ConnectorStatus, Counts, Cursor, RunKind, RunStatus
from domain.connectors.payloads import polled_record
from domain.errors import DomainError
from domain.events import Actor, ActorKind
from domain.ids import WorkspaceId, render
from domain.ingestion.events import RejectedRecord
from domain.ingestion.normalize import CanonicalRecord, Rejected
from projections.connectors import queries
from projections.connectors.view import ConnectorRow

log = logging.getLogger(__name__)
PIPELINE_DEPTH = 4
"""Pages of a run stored at once (each page's items concurrently)."""
ABANDONED_AFTER_S = 60.0
"""A run shown running this long is checked: when no worker holds its connector's lock, its worker died."""
PROGRESS_EVERY_S = 2.0
"""A long run records its counts so far at most this often (SyncRunProgressed), for progress displays."""


@dataclass(frozen=True)
class Scheduled:
    connector_id: str
    run_id: str
    position: int


def system_caller(workspace_id: str, connector_id: str, run_id: str) -> Caller:
    return Caller(workspace_id=WorkspaceId(workspace_id), actor=Actor(kind=ActorKind.SYSTEM, id="sync-worker"),
                  correlation_id=run_id)


class SyncWorker:
    def __init__(self, settings: Settings, runner: CommandRunner, *, policy: Policy | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), name: str | None = None,
                 box: Callable[[], SecretBox] | None = None) -> None:
        self.settings = settings
        self.runner = runner
        self.ingestion = IngestionCommands(runner)
        self.connectors = ConnectorCommands(runner, box or functools.lru_cache(maxsize=1)(
            lambda: SecretBox(master_key(settings), BOX_PURPOSE)))
        self.policy = policy or Policy(timeout_s=settings.connector_http_timeout_s,
                                       attempts=settings.connector_http_attempts,
                                       max_wait_s=settings.connector_http_max_wait_s,
                                       allow_private=settings.private_provider_urls)
        self.clock = clock
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._running: dict[str, asyncio.Task[bool]] = {}

    # --- scheduling ---

    async def schedule_due(self, conn: AsyncConn) -> list[Scheduled]:
        """Queue a run for every connector that is due and idle."""
        now = self.clock()
        queued = []
        for row, busy in await queries.schedulable_connectors(conn):
            if busy:
                continue
            due, key = self.due(row)
            if due > now:
                continue
            caller = system_caller(row.workspace_id, row.id, f"schedule:{key}")
            try:
                result = await self.connectors.queue_run(caller, row.id, RunKind.SCHEDULED, run_key=key)
            except (ConcurrencyConflict, DomainError, NotFound) as exc:
                log.debug("not scheduling %s: %s", row.id, exc)
                continue
            queued.append(Scheduled(row.id, run_id_of(result), result.position))
        return queued

    def due(self, row: ConnectorRow) -> tuple[datetime, str]:
        """When `row` next syncs, and the key naming that scheduled run."""
        if row.status == ConnectorStatus.ERROR and row.last_failure_at is not None:
            backoff = min(self.settings.sync_retry_max_s,
                          self.settings.sync_retry_base_s * 2 ** max(0, row.consecutive_failures - 1))
            due = row.last_failure_at + timedelta(seconds=backoff)
            return due, f"retry:{row.consecutive_failures}:{due.isoformat()}"
        due = cron.next_after(row.schedule, row.last_sync_at or row.created_at)
        return due, f"cron:{due.isoformat()}"

    # --- executing ---

    async def execute(self, run_id: str, workspace_id: str, connector_id: str) -> bool:
        """Run one queued run under its connector's lock; False when another worker holds the connector or the
        run is no longer queued."""
        return await self._locked(connector_id, lambda: self._execute_locked(run_id, workspace_id, connector_id))

    async def recover(self, run_id: str, workspace_id: str, connector_id: str) -> bool:
        """Fail a run left `running` by a worker that died: its connector's lock is free (a live worker holds it
        for the whole run) and the store still says running. The cursor stays; the schedule retries."""
        async def fail_abandoned() -> bool:
            caller = system_caller(workspace_id, connector_id, run_id)
            try:
                run, _ = await self.connectors.run(caller, run_id)
                if run.status != RunStatus.RUNNING:
                    return False
                await self.connectors.fail(caller, run_id, Counts(), "the sync worker stopped during the run")
            except (NotFound, DomainError, ConcurrencyConflict):
                return False
            return True

        return await self._locked(connector_id, fail_abandoned)

    async def _locked(self, connector_id: str, work: Callable[[], Awaitable[bool]]) -> bool:
        """`work()` while holding the connector's session advisory lock; False when another session holds it."""
        lock = await connect(self.settings, autocommit=True)
        try:
            key = f"{self.settings.database_schema}:sync:{connector_id}"
            cur = await lock.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS ok", (key,))
            row = await cur.fetchone()
            if row is None or not row["ok"]:
                return False
            try:
                return await work()
            finally:
                with contextlib.suppress(psycopg.Error):
                    await lock.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
        finally:
            await lock.close()

    async def _execute_locked(self, run_id: str, workspace_id: str, connector_id: str) -> bool:
        caller = system_caller(workspace_id, connector_id, run_id)
        try:
            run, _ = await self.connectors.run(caller, run_id)
            if run.status != RunStatus.QUEUED:
                return False
            await self.connectors.start_run(caller, run_id, self.name)
        except (NotFound, DomainError, ConcurrencyConflict):
            return False
        totals = {"fetched": 0, "created": 0, "updated": 0, "unchanged": 0, "failed": 0}
        try:
            connector, _ = await self.connectors.connector(caller, connector_id)
            if connector.status == ConnectorStatus.PAUSED:
                raise ProviderError("the connector was paused before the run started")
            cursor = await self._sync(caller, run, connector, totals)
        except NotFound:
            await self.connectors.fail(caller, run_id, Counts(**totals), "the connector was deleted")
        except ProviderError as exc:
            log.info("sync run %s of %s failed: %s", run_id, connector_id, exc)
            await self.connectors.fail(caller, run_id, Counts(**totals), str(exc))
        except Exception as exc:
            log.exception("sync run %s of %s crashed", run_id, connector_id)
            await self.connectors.fail(caller, run_id, Counts(**totals), f"internal error: {type(exc).__name__}")
        else:
            await self.connectors.succeed(caller, run_id, Counts(**totals), cursor)
        return True

    async def _sync(self, caller: Caller, run: SyncRun, connector: Connector, totals: dict[str, int]) -> Cursor:
        """Page through the provider into issues, counting into `totals`; the cursor after the last page."""
        credentials = self.connectors.credentials_of(connector)
        backfill = run.kind == RunKind.BACKFILL and run.backfill_days
        since = self.clock() - timedelta(days=run.backfill_days or 0) if backfill else None
        cursor: Cursor = dict(connector.cursor)
        reported = time.monotonic()
        run_id = caller.correlation_id or ""
        async with Http(self.policy) as http:
            client: Client = client_for(connector.type, http, connector.config, credentials)
            in_flight: deque[tuple[asyncio.Task[list[str]], Cursor]] = deque()

            async def settle_oldest() -> Cursor:
                task, page_cursor = in_flight.popleft()
                for outcome in await task:
                    totals[outcome] += 1
                return page_cursor

            try:
                async for page in client.pages(dict(connector.cursor), since):
                    totals["fetched"] += len(page.items)
                    # Pages are stored PIPELINE_DEPTH at a time, while the next one downloads: the group committer
                    # then appends whole pages per transaction instead of waiting for each in turn.
                    in_flight.append((asyncio.create_task(
                        self._store_page(caller, page.items, connector)), page.cursor))
                    while len(in_flight) >= PIPELINE_DEPTH:
                        cursor = await settle_oldest()
                    if time.monotonic() - reported >= PROGRESS_EVERY_S:
                        reported = time.monotonic()
                        await self.connectors.progress(caller, run_id, Counts(**totals))
                while in_flight:
                    cursor = await settle_oldest()
            except ProviderError:
                while in_flight:  # what was fetched before the failure is stored and counted; the cursor stays
                    await settle_oldest()
                raise
            except BaseException:
                for task, _ in in_flight:
                    task.cancel()
                raise
        return cursor

    async def _store_page(self, caller: Caller, items: list[dict[str, object]], connector: Connector) -> list[str]:
        """The page as one ingestion (commands/ingestion.py: one decision, one append; dedup by source +
        external_id; a page that changes nothing appends nothing), its items mapped by the ingestion normalizers.
        When other writers keep changing its issues, item by item instead. The outcome of each item."""
        records: list[tuple[int, CanonicalRecord]] = []
        rejected: list[RejectedRecord] = []
        for index, item in enumerate(items):
            try:
                records.append((index, polled_record(connector.type, item, connector.config)))
            except Rejected as exc:
                log.debug("provider item not mapped: %s", exc)
                rejected.append(RejectedRecord(index=index, reason=exc.message))
        try:
            outcomes = await self._ingest(caller, connector, len(items), records, rejected)
        except ConcurrencyConflict:
            outcomes = [outcome for one in await asyncio.gather(*(self._store(caller, connector, record)
                                                                  for record in records)) for outcome in one]
        return outcomes + ["failed"] * len(rejected)

    async def _ingest(self, caller: Caller, connector: Connector, received: int,
                      records: list[tuple[int, CanonicalRecord]], rejected: list[RejectedRecord]) -> list[str]:
        job, _ = await self.ingestion.ingest_page(caller, received=received, records=records, rejected=rejected,
                                                  source=connector.type, connector_id=render("con", connector.id))
        return [issue.outcome.value for issue in job.issues] + ["failed"] * (len(job.rejected) - len(rejected))

    async def _store(self, caller: Caller, connector: Connector, record: tuple[int, CanonicalRecord]) -> list[str]:
        """One item in an ingestion of its own (after a page's conflict), with the same rules as the page."""
        try:
            return await self._ingest(caller, connector, 1, [record], [])
        except ConcurrencyConflict as exc:
            log.debug("provider item not stored: %s", exc)
            return ["failed"]

    # --- the loop ---

    async def tick(self, pool_conn: AsyncConn) -> None:
        """Start the queued runs this process has room for (each connector once)."""
        for name, task in list(self._running.items()):
            if task.done():
                del self._running[name]
                with contextlib.suppress(asyncio.CancelledError):
                    if task.exception() is not None:
                        log.error("sync task failed", exc_info=task.exception())
        room = self.settings.sync_concurrency - len(self._running)
        if room <= 0:
            return
        busy = set(self._running)
        stale = self.clock() - timedelta(seconds=ABANDONED_AFTER_S)
        for run in await queries.running_runs(pool_conn, stale, limit=10):
            if run.connector_id not in busy and room > 0:
                busy.add(run.connector_id)
                room -= 1
                self._running[run.connector_id] = asyncio.create_task(
                    self.recover(run.id, run.workspace_id, run.connector_id), name=f"recover {run.id}")
        for run in await queries.queued_runs(pool_conn, limit=50):
            if room <= 0:
                break
            if run.connector_id in busy:
                continue
            busy.add(run.connector_id)
            room -= 1
            self._running[run.connector_id] = asyncio.create_task(
                self.execute(run.id, run.workspace_id, run.connector_id), name=f"sync {run.id}")

    async def drain(self) -> None:
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)


async def run_sync_worker(settings: Settings, stopping: asyncio.Event, *, schedule: bool = True) -> None:
    """Poll for queued runs every SYNC_POLL_INTERVAL_S and schedule due ones every SYNC_SCHEDULER_INTERVAL_S,
    until `stopping` is set (runs in progress are finished, not abandoned)."""
    store = EventStore(settings, pool_size=4)
    committer = GroupCommitter(store, max_batch=settings.group_commit_max_batch)
    worker = SyncWorker(settings, CommandRunner(store, committer))
    pool = create_pool(settings, min_size=1, max_size=2, name="sync-worker")
    await pool.open()
    last_schedule = 0.0
    try:
        while not stopping.is_set():
            try:
                async with writer_transaction(pool) as conn:
                    if schedule and time.monotonic() - last_schedule >= settings.sync_scheduler_interval_s:
                        last_schedule = time.monotonic()
                        await worker.schedule_due(conn)
                    await worker.tick(conn)
            except psycopg.Error as exc:
                log.warning("sync worker cannot read its queue: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), settings.sync_poll_interval_s)
        await worker.drain()
    finally:
        await pool.close()
        committer.close()
        store.close()


