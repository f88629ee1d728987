"""Connector and sync-run rows as the API serves them, and how each event changes them."""

from __future__ import annotations

from datetime import datetime

import msgspec

from domain.connectors.events import (
    Config,
    ConnectorCreated,
    ConnectorDeleted,
    ConnectorEvent,
    ConnectorPaused,
    ConnectorReconfigured,
    ConnectorResumed,
    ConnectorSigningSecretSet,
    ConnectorStatus,
    ConnectorSynced,
    ConnectorSyncFailed,
    Counts,
    RunKind,
    RunStatus,
    SyncRunEvent,
    SyncRunFailed,
    SyncRunProgressed,
    SyncRunQueued,
    SyncRunStarted,
    SyncRunSucceeded,
)
from domain.ids import render


class ConnectorView(msgspec.Struct, kw_only=True):
    """A connector: its credentials are never shown, only `has_credentials`."""

    id: str
    workspace_id: str
    version: int
    type: str
    display_name: str
    config: Config
    schedule: str
    status: ConnectorStatus
    has_credentials: bool
    has_signing_secret: bool = False
    """An inbound-webhook signing secret is set (POST …/signing-secret); never the secret itself."""
    last_sync_at: datetime | None = None
    last_error: str | None = None
    last_run_id: str | None = None
    last_failure_at: datetime | None = None
    consecutive_failures: int = 0
    created_at: datetime
    updated_at: datetime


class ConnectorRow(ConnectorView, kw_only=True):
    deleted: bool = False


class SyncRunView(msgspec.Struct, kw_only=True):
    id: str
    workspace_id: str
    version: int
    connector_id: str
    kind: RunKind
    status: RunStatus
    backfill_days: int | None = None
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    records_seen: int = 0
    issues_created: int = 0
    issues_updated: int = 0
    issues_unchanged: int = 0
    issues_failed: int = 0
    error: str | None = None


def apply_connector(row: ConnectorRow | None, event: ConnectorEvent) -> ConnectorRow | None:
    """The row after `event` (None: not a connector this model knows); an already-applied event changes nothing."""
    if isinstance(event, ConnectorCreated):
        if row is not None:
            return row
        return ConnectorRow(id=render("con", event.originator_id), workspace_id=event.workspace_id, version=1,
                            type=event.connector_type, display_name=event.display_name, config=event.config,
                            schedule=event.schedule, status=event.status,
                            has_credentials=event.credentials_ciphertext is not None,
                            created_at=event.occurred_at, updated_at=event.occurred_at)
    if row is None or event.originator_version <= row.version:
        return row
    row = msgspec.structs.replace(row, version=event.originator_version, updated_at=event.occurred_at)
    if isinstance(event, ConnectorReconfigured):
        changes: dict[str, object] = {name: getattr(event, name) for name in ("display_name", "config", "schedule",
                                                                               "status")
                                      if getattr(event, name) is not msgspec.UNSET}
        if event.credentials_ciphertext is not msgspec.UNSET:
            changes["has_credentials"] = True
        return msgspec.structs.replace(row, **changes)
    if isinstance(event, ConnectorPaused):
        return msgspec.structs.replace(row, status=ConnectorStatus.PAUSED)
    if isinstance(event, ConnectorResumed):
        return msgspec.structs.replace(row, status=event.status)
    if isinstance(event, ConnectorDeleted):
        return msgspec.structs.replace(row, deleted=True)
    if isinstance(event, ConnectorSigningSecretSet):
        return msgspec.structs.replace(row, has_signing_secret=True)
    if isinstance(event, ConnectorSynced):
        status: ConnectorStatus = ConnectorStatus.CONNECTED if row.status == ConnectorStatus.ERROR else row.status
        return msgspec.structs.replace(row, status=status, last_sync_at=event.occurred_at, last_error=None,
                                       last_run_id=event.run_id, consecutive_failures=0)
    if isinstance(event, ConnectorSyncFailed):
        failed: ConnectorStatus = ConnectorStatus.ERROR if row.status == ConnectorStatus.CONNECTED else row.status
        return msgspec.structs.replace(row, status=failed, last_error=event.error, last_run_id=event.run_id,
                                       last_failure_at=event.occurred_at,
                                       consecutive_failures=event.consecutive_failures)
    return row


def _counted(row: SyncRunView, counts: Counts) -> SyncRunView:
    return msgspec.structs.replace(row, records_seen=counts.fetched, issues_created=counts.created,
                                   issues_updated=counts.updated, issues_unchanged=counts.unchanged,
                                   issues_failed=counts.failed)


def apply_run(row: SyncRunView | None, event: SyncRunEvent) -> SyncRunView | None:
    if isinstance(event, SyncRunQueued):
        if row is not None:
            return row
        return SyncRunView(id=render("run", event.originator_id), workspace_id=event.workspace_id, version=1,
                           connector_id=event.connector_id, kind=event.kind, status=RunStatus.QUEUED,
                           backfill_days=event.backfill_days, queued_at=event.occurred_at)
    if row is None or event.originator_version <= row.version:
        return row
    row = msgspec.structs.replace(row, version=event.originator_version)
    if isinstance(event, SyncRunStarted):
        return msgspec.structs.replace(row, status=RunStatus.RUNNING, started_at=event.occurred_at)
    if isinstance(event, SyncRunProgressed):
        return _counted(row, event.counts)
    if isinstance(event, SyncRunSucceeded):
        return msgspec.structs.replace(_counted(row, event.counts), status=RunStatus.SUCCEEDED,
                                       finished_at=event.occurred_at)
    if isinstance(event, SyncRunFailed):
        return msgspec.structs.replace(_counted(row, event.counts), status=RunStatus.FAILED,
                                       finished_at=event.occurred_at, error=event.error)
    return row
