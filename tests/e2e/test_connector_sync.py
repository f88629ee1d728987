"""Sync runs end to end: the API queues, the sync worker pulls from a local provider server, issues appear once,
counts and cursors are kept, outages mark the connector, and a connector never syncs twice at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import AsyncTestClient

from adapters.event_store import EventStore
from adapters.postgres import create_pool, writer_transaction
from adapters.settings import Settings
from commands.connectors import run_id_of
from commands.group_commit import GroupCommitter
from commands.runner import CommandRunner
from domain.connectors.events import RunKind
from domain.identity.roles import Role
from domain.ids import render
from projections.position_waiter import PositionWaiter
from tests.e2e.conftest import Tenant
from tests.fake_providers import JIRA_EMAIL, T0, TOKEN, Provider
from tests.worker_thread import WorkerThread
from workers.sync.worker import SyncWorker, run_sync_worker

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ADMIN = Role.TENANT_ADMIN
FINISHED = {"succeeded", "failed"}


def sync_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, sync_poll_interval_s=0.05, connector_http_timeout_s=1.0,
                                   connector_http_attempts=2, sync_concurrency=4)


class SyncWorkers(WorkerThread):
    """`count` sync worker loops (as separate processes would run them), on a thread of their own."""

    def __init__(self, settings: Settings, count: int = 1) -> None:
        async def run(stopping: asyncio.Event) -> None:
            await asyncio.gather(*(run_sync_worker(settings, stopping, schedule=False) for _ in range(count)))

        super().__init__("sync-workers", run)


@pytest.fixture(scope="module")
def sync_worker(settings: Settings) -> Iterator[SyncWorkers]:
    with SyncWorkers(sync_settings(settings)) as running:
        yield running


async def connector(api: Client, tenant: Tenant, base: str, kind: str = "github", **fields: Any) -> dict[str, Any]:
    bodies: dict[str, dict[str, Any]] = {
        "github": {"config": {"owner": "acme", "repo": "web", "base_url": base}, "credentials": {"token": TOKEN}},
        "jira": {"config": {"site_url": base}, "credentials": {"email": JIRA_EMAIL, "api_token": TOKEN}},
        "pagerduty": {"config": {"base_url": base}, "credentials": {"api_key": TOKEN}},
        "sentry": {"config": {"organization": "acme", "base_url": base}, "credentials": {"token": TOKEN}},
    }
    response = await api.post("/v1/connectors", json={"type": kind, **bodies[kind], **fields},
                              headers=tenant.headers(ADMIN))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def finished(api: Client, tenant: Tenant, run_id: str, timeout: float = 30) -> dict[str, Any]:
    """The run once the worker has finished it (it works asynchronously: polled, bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = (await api.get(f"/v1/sync-runs/{run_id}", headers=tenant.headers())).json()
        if run.get("status") in FINISHED:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run.get('status')} after {timeout}s"
        await asyncio.sleep(0.05)


async def sync(api: Client, tenant: Tenant, connector_id: str, path: str = "sync", **body: Any) -> dict[str, Any]:
    response = await api.post(f"/v1/connectors/{connector_id}/{path}", json=body or None,
                              headers=tenant.headers(ADMIN))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return await finished(api, tenant, response.json()["id"])


async def issue_total(api: Client, tenant: Tenant, source: str) -> int:
    listed = await api.get(f"/v1/issues?source={source}&limit=1", headers=tenant.headers())
    total: int = listed.json()["page"]["total"]
    return total


async def test_a_sync_creates_each_provider_issue_once_and_a_rerun_fetches_only_what_changed(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], sync_worker: SyncWorkers) -> None:
    base, state = provider
    state.add_github(250)
    con = await connector(api, tenant, base)

    first = await sync(api, tenant, con["id"])
    state.touch_github(7, "Checkout fails on Safari", T0 + timedelta(days=1))
    second = await sync(api, tenant, con["id"])
    third = await sync(api, tenant, con["id"])
    after = (await api.get(f"/v1/connectors/{con['id']}", headers=tenant.headers())).json()
    runs = (await api.get(f"/v1/connectors/{con['id']}/sync-runs", headers=tenant.headers())).json()
    edited = (await api.get("/v1/issues?source=github&q=Safari", headers=tenant.headers())).json()

    assert first["status"] == "succeeded" and first["kind"] == "manual"
    assert (first["records_seen"], first["issues_created"], first["issues_updated"]) == (250, 250, 0)
    assert first["started_at"] <= first["finished_at"] and first["error"] is None
    assert (second["records_seen"], second["issues_created"], second["issues_updated"],
            second["issues_unchanged"]) == (2, 0, 1, 1)  # the changed one, and the one at the mark (inclusive)
    assert (third["records_seen"] == 1 and third["issues_updated"] == 0) or third["records_seen"] == 0
    assert await issue_total(api, tenant, "github") == 250
    assert [i["external_id"] for i in edited["data"]] == ["acme/web#7"]
    assert after["status"] == "connected" and after["last_sync_at"] is not None and after["last_error"] is None
    assert [r["id"] for r in runs["data"]] == [third["id"], second["id"], first["id"]]


def sync_jobs(settings: Settings, connector_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The ingestion jobs the connector's sync pages recorded, from the event store (the source of truth)."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        rows = conn.execute("SELECT originator_id, convert_from(state, 'UTF8')::jsonb FROM causeloop_events "
                            "WHERE topic = 'IngestionJobCompleted' AND "
                            "convert_from(state, 'UTF8')::jsonb->>'connector_id' = %s", (connector_id,)).fetchall()
    return [(render("ing_job", row[0]), row[1]) for row in rows]


async def test_each_sync_page_is_an_ingestion_job_of_its_connector_and_an_unchanged_page_records_none(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], sync_worker: SyncWorkers,
        settings: Settings) -> None:
    base, state = provider
    state.add_github(250)
    con = await connector(api, tenant, base)
    first = await sync(api, tenant, con["id"])
    after_first = sync_jobs(settings, con["id"])
    again = await sync(api, tenant, con["id"])  # only the item at the mark, unchanged
    after_again = sync_jobs(settings, con["id"])
    job_id, _ = after_first[0]
    shown = await api.get(f"/v1/ingest/status/{job_id}", headers=tenant.headers())

    assert first["issues_created"] == 250 and again["issues_unchanged"] == again["records_seen"] >= 1
    assert len(after_first) >= 3 and sum(len(job["issues"]) for _, job in after_first) == 250
    assert {(job["kind"], job["source"]) for _, job in after_first} == {("source", "github")}
    assert after_again == after_first
    assert shown.status_code == 200 and shown.json()["connector_id"] == con["id"], shown.text


async def test_an_outage_marks_the_connector_error_keeps_the_cursor_and_the_next_run_recovers(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], sync_worker: SyncWorkers) -> None:
    base, state = provider
    state.add_github(30)
    con = await connector(api, tenant, base)
    await sync(api, tenant, con["id"])

    state.fault("/repos/acme/web/issues", "503", "503")
    failed = await sync(api, tenant, con["id"])
    broken = (await api.get(f"/v1/connectors/{con['id']}", headers=tenant.headers())).json()
    state.touch_github(3, "Checkout fails again", T0 + timedelta(days=2))
    recovered = await sync(api, tenant, con["id"])
    healed = (await api.get(f"/v1/connectors/{con['id']}", headers=tenant.headers())).json()

    assert failed["status"] == "failed" and "HTTP 503" in failed["error"]
    assert broken["status"] == "error" and "HTTP 503" in broken["last_error"]
    assert broken["consecutive_failures"] == 1
    assert recovered["status"] == "succeeded" and recovered["records_seen"] == 2  # from the kept cursor
    assert healed["status"] == "connected" and healed["last_error"] is None
    assert await issue_total(api, tenant, "github") == 30


async def test_garbage_and_a_hanging_provider_fail_the_run_cleanly(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], sync_worker: SyncWorkers) -> None:
    base, state = provider
    state.add_github(3)
    con = await connector(api, tenant, base)
    state.fault("/repos/acme/web/issues", "garbage")
    garbage = await sync(api, tenant, con["id"])
    state.fault("/repos/acme/web/issues", "hang", "hang")
    hung = await sync(api, tenant, con["id"])
    assert garbage["status"] == "failed" and "unexpected body" in garbage["error"]
    assert hung["status"] == "failed" and "no answer" in hung["error"]


async def test_jira_pagerduty_and_sentry_sync_into_canonical_issues(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], sync_worker: SyncWorkers) -> None:
    base, state = provider
    state.add_jira(120)
    state.add_pagerduty(15)
    state.add_sentry(110)
    runs = {kind: await sync(api, tenant, (await connector(api, tenant, base, kind))["id"])
            for kind in ("jira", "pagerduty", "sentry")}
    jira = (await api.get("/v1/issues?source=jira&limit=1", headers=tenant.headers())).json()
    pagerduty = (await api.get("/v1/issues?source=pagerduty&limit=1", headers=tenant.headers())).json()

    assert {kind: run["issues_created"] for kind, run in runs.items()} == {"jira": 120, "pagerduty": 15,
                                                                            "sentry": 110}
    first = jira["data"][0]
    assert first["severity"] == "high" and first["body"] == "lag" and "/browse/OPS-" in first["external_url"]
    assert pagerduty["data"][0]["severity"] == "critical"


async def test_the_connection_test_makes_a_real_call(api: Client, tenant: Tenant,
                                                     provider: tuple[str, Provider]) -> None:
    base, state = provider
    good = await connector(api, tenant, base)
    bad = await connector(api, tenant, base, credentials={"token": "wrong"})
    ok = await api.post(f"/v1/connectors/{good['id']}/test", headers=tenant.headers(ADMIN))
    refused = await api.post(f"/v1/connectors/{bad['id']}/test", headers=tenant.headers(ADMIN))
    assert ok.status_code == 200 and ok.json()["ok"] is True and ok.json()["outcome"] == "ok"
    assert refused.json()["ok"] is False and refused.json()["outcome"] == "unauthorized"
    assert state.requests[0][2]["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in refused.text


async def test_a_backfill_is_a_backfill_run_and_days_are_checked(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], sync_worker: SyncWorkers) -> None:
    base, state = provider
    state.add_github(4, updated=datetime.now(UTC) - timedelta(days=1))
    state.add_github(2, start=5, updated=datetime.now(UTC) - timedelta(days=40))  # older than the window
    con = await connector(api, tenant, base)
    run = await sync(api, tenant, con["id"], "backfill", days=30)
    too_many = await api.post(f"/v1/connectors/{con['id']}/backfill", json={"days": 366},
                              headers=tenant.headers(ADMIN))
    since = next(r[1].get("since", [""])[0] for r in state.requests if r[0].endswith("/issues"))
    assert run["kind"] == "backfill" and run["backfill_days"] == 30, run
    assert run["issues_created"] == 4, run
    assert abs(datetime.fromisoformat(since) - (datetime.now(UTC) - timedelta(days=30))) < timedelta(minutes=5)
    assert too_many.status_code == 400 and too_many.json()["error"]["details"]["field"] == "days"


async def test_two_workers_never_sync_the_same_connector_at_once(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], settings: Settings) -> None:
    base, state = provider
    state.add_github(500)
    state.delay_s = 0.02
    con = await connector(api, tenant, base)
    queued = [await api.post(f"/v1/connectors/{con['id']}/sync", headers=tenant.headers(ADMIN)) for _ in range(3)]
    with SyncWorkers(sync_settings(settings), count=3):
        runs = [await finished(api, tenant, response.json()["id"], timeout=60) for response in queued]
    assert [run["status"] for run in runs] == ["succeeded"] * 3
    assert state.max_in_flight == 1
    assert await issue_total(api, tenant, "github") == 500


async def test_the_scheduler_queues_a_due_connector_once_even_from_two_schedulers(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], settings: Settings) -> None:
    base, _ = provider
    con = await connector(api, tenant, base, schedule="*/5 * * * *")
    later = datetime.now(UTC) + timedelta(minutes=6)
    store = EventStore(settings, pool_size=2)
    committer = GroupCommitter(store)
    pool = create_pool(settings, min_size=1, max_size=1, name="scheduler-test")
    await pool.open()
    try:
        schedulers = [SyncWorker(settings, CommandRunner(store, committer), clock=lambda: later) for _ in range(2)]
        async with writer_transaction(pool) as conn:
            queued = await asyncio.gather(*(s.schedule_due(conn) for s in schedulers))
        not_yet = SyncWorker(settings, CommandRunner(store, committer), clock=lambda: datetime.now(UTC))
        async with writer_transaction(pool) as conn:
            early = await not_yet.schedule_due(conn)
    finally:
        await pool.close()
        committer.close()
        store.close()
    mine = [run for runs in queued for run in runs if run.connector_id == con["id"]]
    assert len(mine) == 1 and con["id"] not in [run.connector_id for run in early]
    waiter = PositionWaiter(settings)
    await waiter.start()
    try:
        assert await waiter.wait("connectors", mine[0].position, 10)
    finally:
        await waiter.stop()
    listed = (await api.get(f"/v1/connectors/{con['id']}/sync-runs", headers=tenant.headers())).json()
    assert [(r["id"], r["kind"]) for r in listed["data"]] == [(mine[0].run_id, "scheduled")]


async def test_the_cli_syncs_a_connector_and_lists_its_runs_with_progress(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], sync_worker: SyncWorkers, settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    base, state = provider
    state.add_github(120)
    con = await connector(api, tenant, base)
    environ = {"DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema}

    synced = await asyncio.to_thread(main, ["connectors", "sync", con["id"]], environ)
    sync_out = capsys.readouterr().out
    listed = await asyncio.to_thread(main, ["connectors", "runs", con["id"]], environ)
    runs_out = capsys.readouterr().out
    unknown = await asyncio.to_thread(main, ["connectors", "runs", "con_nope"], environ)

    run_id = sync_out.split()[1]
    assert synced == 0 and sync_out.startswith("queued run_")
    assert "succeeded: 120 fetched, 120 new, 0 updated, 0 unchanged, 0 failed" in sync_out
    assert listed == 0 and run_id in runs_out and "manual" in runs_out and "succeeded" in runs_out
    assert unknown == 2


async def test_a_run_left_running_by_a_dead_worker_is_failed_once_its_connector_is_free(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], settings: Settings) -> None:
    import psycopg

    from commands.caller import Caller
    from domain.events import Actor, ActorKind
    from domain.ids import WorkspaceId

    base, _ = provider
    con = await connector(api, tenant, base)
    store = EventStore(settings, pool_size=2)
    committer = GroupCommitter(store)
    try:
        worker = SyncWorker(settings, CommandRunner(store, committer))
        caller = Caller(workspace_id=WorkspaceId(tenant.workspace_id), actor=Actor(kind=ActorKind.SYSTEM, id="t"))
        key = f"{settings.database_schema}:sync:{con['id']}"
        with psycopg.connect(settings.database_url, autocommit=True) as holder:  # "a live worker holds the lock"
            holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
            queued = {"id": run_id_of(await worker.connectors.queue_run(caller, con["id"], RunKind.MANUAL))}
            await worker.connectors.start_run(caller, queued["id"], "a worker that then dies")
            held = await worker.recover(queued["id"], tenant.workspace_id, con["id"])
        freed = await worker.recover(queued["id"], tenant.workspace_id, con["id"])
        again = await worker.recover(queued["id"], tenant.workspace_id, con["id"])
    finally:
        committer.close()
        store.close()
    run = await finished(api, tenant, queued["id"])
    assert (held, freed, again) == (False, True, False)
    assert run["status"] == "failed" and "stopped" in run["error"]


async def test_a_long_backfill_shows_its_progress_in_the_api_and_the_cli(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], sync_worker: SyncWorkers, settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    base, state = provider
    state.add_github(1_000, updated=datetime.now(UTC) - timedelta(days=1))
    state.delay_s = 0.35  # 10 pages: a run of several seconds, past the 2 s between progress records
    con = await connector(api, tenant, base)
    queued = (await api.post(f"/v1/connectors/{con['id']}/backfill", json={"days": 7},
                             headers=tenant.headers(ADMIN))).json()
    environ = {"DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema}

    followed = await asyncio.to_thread(main, ["connectors", "runs", con["id"]], environ)
    lines = capsys.readouterr().out.splitlines()
    run = await finished(api, tenant, queued["id"])

    progress = [line for line in lines if line.startswith(queued["id"]) and " running: " in line]
    seen = [int(line.split(" running: ")[1].split(" fetched")[0]) for line in progress]
    assert followed == 0 and run["status"] == "succeeded" and run["records_seen"] == 1_000
    assert any(0 < n < 1_000 for n in seen), lines  # counts while it ran, not only at the end
    assert lines[-1].startswith(f"{queued['id']} backfill succeeded: 1000 fetched, 1000 new")
