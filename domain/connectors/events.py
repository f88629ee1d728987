"""Connector and sync-run events. Credentials appear only as AES-256-GCM ciphertext. Additive-only."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import msgspec

from domain.events import DomainEvent

Config = dict[str, object]
Cursor = dict[str, str]
"""A provider's incremental mark (updated-since time, ETag, page token): opaque outside its provider client."""


class ConnectorStatus(StrEnum):
    CONNECTED = "connected"
    PAUSED = "paused"
    ERROR = "error"
    PENDING_AUTH = "pending_auth"


class RunKind(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Counts(msgspec.Struct, frozen=True, kw_only=True):
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0


class ConnectorEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "connector"


class ConnectorCreated(ConnectorEvent, frozen=True, kw_only=True):
    connector_type: str
    """The catalogue `type` (`type` itself is the event's tag)."""

    display_name: str
    config: Config = msgspec.field(default_factory=dict)
    schedule: str
    credentials_ciphertext: str | None = None
    status: ConnectorStatus


class ConnectorReconfigured(ConnectorEvent, frozen=True, kw_only=True):
    """Only the fields that changed are present; new credentials come as ciphertext."""

    display_name: str | msgspec.UnsetType = msgspec.UNSET
    config: Config | msgspec.UnsetType = msgspec.UNSET
    schedule: str | msgspec.UnsetType = msgspec.UNSET
    credentials_ciphertext: str | msgspec.UnsetType = msgspec.UNSET
    status: ConnectorStatus | msgspec.UnsetType = msgspec.UNSET


class ConnectorPaused(ConnectorEvent, frozen=True, kw_only=True):
    pass


class ConnectorResumed(ConnectorEvent, frozen=True, kw_only=True):
    status: ConnectorStatus


class ConnectorDeleted(ConnectorEvent, frozen=True, kw_only=True):
    pass


class ConnectorSynced(ConnectorEvent, frozen=True, kw_only=True):
    """A run succeeded: the provider's new incremental mark (the cursor lives in the connector's stream)."""

    run_id: str
    cursor: Cursor
    counts: Counts


class ConnectorSyncFailed(ConnectorEvent, frozen=True, kw_only=True):
    """A run failed: the connector shows `error` until a run succeeds; the cursor is left as it was."""

    run_id: str
    error: str
    consecutive_failures: int


class ConnectorSigningSecretSet(ConnectorEvent, frozen=True, kw_only=True):
    """A new inbound-webhook signing secret (`whsec_…`, shown once), as ciphertext; it replaces the previous one."""

    secret_ciphertext: str


class InboundDeliveryEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "inbound_delivery"


class InboundDeliveryReceived(InboundDeliveryEvent, frozen=True, kw_only=True):
    """No longer appended: a delivery is now an ingestion job (`IngestionJobCompleted` in the same stream, keyed by
    connector + delivery id). Kept decodable because events already stored are never rewritten; a replay of such
    a delivery still finds its stream and is acknowledged."""

    connector_id: str
    delivery_id: str
    accepted: int
    rejected: int


class SyncRunEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "sync_run"


class SyncRunQueued(SyncRunEvent, frozen=True, kw_only=True):
    connector_id: str
    kind: RunKind
    backfill_days: int | None = None


class SyncRunStarted(SyncRunEvent, frozen=True, kw_only=True):
    connector_id: str
    worker: str


class SyncRunProgressed(SyncRunEvent, frozen=True, kw_only=True):
    """Counts so far of a long run (one event per few pages), for progress displays."""

    connector_id: str
    counts: Counts


class SyncRunSucceeded(SyncRunEvent, frozen=True, kw_only=True):
    connector_id: str
    counts: Counts


class SyncRunFailed(SyncRunEvent, frozen=True, kw_only=True):
    connector_id: str
    counts: Counts
    error: str


AnyConnectorEvent = (ConnectorCreated | ConnectorReconfigured | ConnectorPaused | ConnectorResumed
                     | ConnectorDeleted | ConnectorSynced | ConnectorSyncFailed | ConnectorSigningSecretSet)
AnySyncRunEvent = SyncRunQueued | SyncRunStarted | SyncRunProgressed | SyncRunSucceeded | SyncRunFailed
AnyConnectorsCategoryEvent = AnyConnectorEvent | AnySyncRunEvent | InboundDeliveryReceived
CONNECTOR_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ConnectorCreated, ConnectorReconfigured, ConnectorPaused, ConnectorResumed, ConnectorDeleted, ConnectorSynced,
    ConnectorSyncFailed, SyncRunQueued, SyncRunStarted, SyncRunProgressed, SyncRunSucceeded, SyncRunFailed,
    ConnectorSigningSecretSet, InboundDeliveryReceived,
)
