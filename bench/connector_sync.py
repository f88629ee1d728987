"""Bench scenario `sync`: a connector sync of N GitHub issues served by the local provider server
(tests/fake_providers.py: real GitHub shapes, 100 issues per page, Link pagination), end to end.

Measured: the sync run itself (the sync worker's `execute`: started → succeeded, i.e. every page fetched, mapped and
appended as IssueOpened with its page's IngestionJobCompleted through the ingestion command, dedup by source +
external_id), then until the `issues` read model has them all;
and an incremental re-run (nothing changed: one item at the mark, unchanged).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from adapters.event_store import EventStore
from adapters.secret_box import SecretBox
from adapters.settings import Settings
from bench.data import Tenant
from commands.caller import Caller
from commands.connectors import BOX_PURPOSE, ConnectorCommands, connector_id_of, run_id_of
from commands.group_commit import GroupCommitter
from commands.runner import CommandRunner
from domain.connectors.events import Counts, RunKind, SyncRunFailed, SyncRunSucceeded
from domain.events import Actor, ActorKind
from domain.ids import WorkspaceId
from tests.fake_providers import TOKEN, serving
from workers.sync.worker import SyncWorker


@dataclass
class Synced:
    issues: int
    sync_s: float
    projected_s: float
    counts: Counts
    rerun_s: float
    rerun: Counts

    @property
    def sync_rate(self) -> float:
        return self.issues / self.sync_s if self.sync_s else 0.0

    @property
    def end_to_end_rate(self) -> float:
        return self.issues / self.projected_s if self.projected_s else 0.0


def connector_sync(settings: Settings, tenant: Tenant, issues: int, wait_projected: Callable[[int], None]) -> Synced:
    """`wait_projected(position)` blocks until the `issues` read model has reached `position`."""
    key = os.urandom(32)
    with serving() as (base, provider):
        provider.add_github(issues)
        return asyncio.run(_sync(settings, tenant, base, key, issues, wait_projected))


async def _sync(settings: Settings, tenant: Tenant, base: str, key: bytes, issues: int,
                wait_projected: Callable[[int], None]) -> Synced:
    store = EventStore(settings, pool_size=4)
    committer = GroupCommitter(store, max_batch=settings.group_commit_max_batch)
    runner = CommandRunner(store, committer)

    def box() -> SecretBox:
        return SecretBox(key, BOX_PURPOSE)

    commands = ConnectorCommands(runner, box)
    caller = Caller(workspace_id=WorkspaceId(tenant.workspace_id),
                    actor=Actor(kind=ActorKind.USER, id=tenant.user_id))
    worker = SyncWorker(msgspec.structs.replace(settings, connector_http_timeout_s=30.0), runner, box=box)

    async def one_run(connector_id: str) -> tuple[float, Counts]:
        run_id = run_id_of(await commands.queue_run(caller, connector_id, RunKind.MANUAL))
        started = time.perf_counter()
        assert await worker.execute(run_id, tenant.workspace_id, connector_id)
        took = time.perf_counter() - started
        _, history = await commands.run(caller, run_id)
        last = history[-1]
        if isinstance(last, SyncRunFailed):
            raise RuntimeError(f"the sync run failed: {last.error}")
        assert isinstance(last, SyncRunSucceeded)
        return took, last.counts

    try:
        created = await commands.create(caller, connector_type="github", display_name="bench",
                                        config={"owner": "acme", "repo": "web", "base_url": base},
                                        schedule=None, credentials={"token": TOKEN})
        connector_id = connector_id_of(created)
        started = time.perf_counter()
        sync_s, counts = await one_run(connector_id)
        await asyncio.to_thread(wait_projected, store.head())
        projected_s = time.perf_counter() - started
        rerun_s, rerun = await one_run(connector_id)
        return Synced(issues=issues, sync_s=sync_s, projected_s=projected_s, counts=counts, rerun_s=rerun_s,
                      rerun=rerun)
    finally:
        committer.close()
        store.close()
