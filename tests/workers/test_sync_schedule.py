"""When the scheduler next syncs a connector: its cron after the last success, or a backoff after failures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec
import pytest

from adapters.event_store import EventStore
from adapters.settings import Settings
from commands.group_commit import GroupCommitter
from commands.runner import CommandRunner
from domain.connectors.events import ConnectorStatus
from projections.connectors.view import ConnectorRow
from workers.sync.worker import SyncWorker

CREATED = datetime(2026, 12, 1, 10, 7, tzinfo=UTC)


@pytest.fixture
def worker() -> Iterator[SyncWorker]:
    store = EventStore(None)
    committer = GroupCommitter(store)
    yield SyncWorker(Settings(sync_retry_base_s=60, sync_retry_max_s=600), CommandRunner(store, committer))
    committer.close()


def row(**fields: object) -> ConnectorRow:
    base = {"id": "con_01KV1PX3NR96XJRGD48NNHH431", "workspace_id": "ws_x", "version": 1, "type": "github",
            "display_name": "g", "config": {}, "schedule": "*/30 * * * *", "status": ConnectorStatus.CONNECTED,
            "has_credentials": True, "created_at": CREATED, "updated_at": CREATED}
    return msgspec.convert({**base, **fields}, ConnectorRow)


def test_a_new_connector_is_due_at_its_first_cron_time(worker: SyncWorker) -> None:
    due, key = worker.due(row())
    assert due == datetime(2026, 12, 1, 10, 30, tzinfo=UTC) and key == f"cron:{due.isoformat()}"


def test_after_a_success_the_next_cron_time_after_it(worker: SyncWorker) -> None:
    due, _ = worker.due(row(schedule="0 * * * *", last_sync_at=datetime(2026, 12, 1, 11, 0, 5, tzinfo=UTC)))
    assert due == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("failures", "seconds"), [(1, 60), (2, 120), (3, 240), (5, 600), (9, 600)])
def test_after_failures_a_capped_exponential_backoff(worker: SyncWorker, failures: int, seconds: int) -> None:
    failed_at = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    due, key = worker.due(row(status=ConnectorStatus.ERROR, last_failure_at=failed_at,
                              consecutive_failures=failures))
    assert (due - failed_at).total_seconds() == seconds and key.startswith(f"retry:{failures}:")
