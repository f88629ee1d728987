"""The Connector and SyncRun aggregates: their state, folds and decisions."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import msgspec

from domain.connectors.catalog import CATALOG, CatalogEntry
from domain.connectors.events import (
    AnyConnectorEvent,
    AnySyncRunEvent,
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
    Cursor,
    RunKind,
    RunStatus,
    SyncRunEvent,
    SyncRunFailed,
    SyncRunProgressed,
    SyncRunQueued,
    SyncRunStarted,
    SyncRunSucceeded,
)
from domain.errors import DomainError, InvalidTransition, InvalidValue
from domain.events import DomainEvent, Meta, envelope
from domain.ids import render

DEFAULT_SCHEDULE = "*/30 * * * *"
NAME_MAX = 120
ERROR_MAX = 2000


class SyncNotSupported(DomainError):
    """This connector type is push-only (ingestion API, inbound webhooks): there is nothing to poll."""

    code = "sync_not_supported"


class Connector(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    workspace_id: str
    version: int
    type: str
    display_name: str
    config: Config
    schedule: str
    credentials_ciphertext: str | None
    status: ConnectorStatus
    deleted: bool = False
    cursor: Cursor = msgspec.field(default_factory=dict)
    consecutive_failures: int = 0
    signing_secret_ciphertext: str | None = None

    @property
    def entry(self) -> CatalogEntry:
        return CATALOG[self.type]


class SyncRun(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    workspace_id: str
    version: int
    connector_id: str
    kind: RunKind
    status: RunStatus
    backfill_days: int | None = None


class ConnectorEdit(msgspec.Struct, frozen=True, kw_only=True):
    display_name: str | msgspec.UnsetType = msgspec.UNSET
    config: Config | msgspec.UnsetType = msgspec.UNSET
    schedule: str | msgspec.UnsetType = msgspec.UNSET
    credentials_ciphertext: str | msgspec.UnsetType = msgspec.UNSET


def evolve(connector: Connector | None, event: AnyConnectorEvent) -> Connector:
    if isinstance(event, ConnectorCreated):
        return Connector(id=event.originator_id, workspace_id=event.workspace_id, version=event.originator_version,
                         type=event.connector_type, display_name=event.display_name, config=event.config,
                         schedule=event.schedule, credentials_ciphertext=event.credentials_ciphertext,
                         status=event.status)
    assert connector is not None, "a connector stream starts with ConnectorCreated"
    connector = msgspec.structs.replace(connector, version=event.originator_version)
    if isinstance(event, ConnectorReconfigured):
        changes = {name: getattr(event, name) for name in ConnectorReconfigured.__struct_fields__
                   if name not in DomainEvent.__struct_fields__ and getattr(event, name) is not msgspec.UNSET}
        return msgspec.structs.replace(connector, **changes)
    if isinstance(event, ConnectorPaused):
        return msgspec.structs.replace(connector, status=ConnectorStatus.PAUSED)
    if isinstance(event, ConnectorResumed):
        return msgspec.structs.replace(connector, status=event.status)
    if isinstance(event, ConnectorDeleted):
        return msgspec.structs.replace(connector, deleted=True)
    if isinstance(event, ConnectorSigningSecretSet):
        return msgspec.structs.replace(connector, signing_secret_ciphertext=event.secret_ciphertext)
    if isinstance(event, ConnectorSynced):
        status: ConnectorStatus = (ConnectorStatus.CONNECTED if connector.status == ConnectorStatus.ERROR
                                   else connector.status)
        return msgspec.structs.replace(connector, cursor=event.cursor, consecutive_failures=0, status=status)
    failed: ConnectorStatus = (ConnectorStatus.ERROR if connector.status == ConnectorStatus.CONNECTED
                               else connector.status)
    return msgspec.structs.replace(connector, status=failed, consecutive_failures=event.consecutive_failures)


def project_connector(events: Iterable[AnyConnectorEvent]) -> Connector | None:
    return functools.reduce(evolve, events, None)


def evolve_run(run: SyncRun | None, event: AnySyncRunEvent) -> SyncRun:
    if isinstance(event, SyncRunQueued):
        return SyncRun(id=event.originator_id, workspace_id=event.workspace_id, version=event.originator_version,
                       connector_id=event.connector_id, kind=event.kind, status=RunStatus.QUEUED,
                       backfill_days=event.backfill_days)
    assert run is not None, "a sync-run stream starts with SyncRunQueued"
    run = msgspec.structs.replace(run, version=event.originator_version)
    if isinstance(event, SyncRunStarted):
        return msgspec.structs.replace(run, status=RunStatus.RUNNING)
    if isinstance(event, SyncRunSucceeded):
        return msgspec.structs.replace(run, status=RunStatus.SUCCEEDED)
    if isinstance(event, SyncRunFailed):
        return msgspec.structs.replace(run, status=RunStatus.FAILED)
    return run


def project_run(events: Iterable[AnySyncRunEvent]) -> SyncRun | None:
    return functools.reduce(evolve_run, events, None)


# --- configuration checks (the catalogue's schemas: a small, closed subset of JSON Schema) ---

def check_against(schema: dict[str, Any], value: object, field: str) -> None:
    """`value` obeys the catalogue schema: an object of strings (with lengths or an enum) and string arrays."""
    if not isinstance(value, dict):
        raise InvalidValue(field, "must be an object")
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise InvalidValue(f"{field}.{name}", "is required")
    for name, item in value.items():
        spec = properties.get(name)
        if spec is None:
            raise InvalidValue(f"{field}.{name}", f"is not a setting of this connector type "
                                                  f"(known: {', '.join(sorted(properties)) or 'none'})")
        _check_value(spec, item, f"{field}.{name}")


def _check_value(spec: dict[str, Any], value: object, field: str) -> None:
    if spec["type"] == "array":
        if not isinstance(value, list) or len(value) > spec.get("maxItems", 100):
            raise InvalidValue(field, f"must be a list of at most {spec.get('maxItems', 100)} strings")
        for item in value:
            _check_value(spec["items"], item, field)
        return
    if not isinstance(value, str):
        raise InvalidValue(field, "must be a string")
    if "enum" in spec and value not in spec["enum"]:
        raise InvalidValue(field, f"must be one of {', '.join(spec['enum'])}")
    if not spec.get("minLength", 0) <= len(value) <= spec.get("maxLength", 10_000):
        raise InvalidValue(field, f"must be {spec.get('minLength', 0)}–{spec.get('maxLength', 10_000)} characters")
    if spec.get("format") == "uri" and not value.startswith(("https://", "http://")):
        raise InvalidValue(field, "must be an http(s) URL")


def entry_of(connector_type: str) -> CatalogEntry:
    entry = CATALOG.get(connector_type)
    if entry is None:
        raise InvalidValue("type", f"must be one of {', '.join(CATALOG)}")
    return entry


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidValue("display_name", f"must be 1–{NAME_MAX} characters")
    return name


# --- connector decisions ---

def create_connector(*, connector_id: UUID, meta: Meta, connector_type: str, display_name: str | None,
                     config: Config, schedule: str, credentials_ciphertext: str | None) -> ConnectorCreated:
    """An OAuth connector without credentials waits for authorization (`pending_auth`); others are connected."""
    entry = entry_of(connector_type)
    check_against(entry.config_schema, config, "config")
    waiting = entry.oauth and credentials_ciphertext is None
    return ConnectorCreated(**envelope(meta, connector_id, 1), connector_type=entry.type,
                            display_name=_clean_name(display_name or entry.name), config=config, schedule=schedule,
                            credentials_ciphertext=credentials_ciphertext,
                            status=ConnectorStatus.PENDING_AUTH if waiting else ConnectorStatus.CONNECTED)


def reconfigure(connector: Connector, edit: ConnectorEdit, meta: Meta) -> list[ConnectorEvent]:
    """Only what changes is recorded; credentials given to a connector waiting for them connect it."""
    if edit.config is not msgspec.UNSET:
        check_against(connector.entry.config_schema, edit.config, "config")
    name = edit.display_name if edit.display_name is msgspec.UNSET else _clean_name(edit.display_name)
    status: ConnectorStatus | msgspec.UnsetType = msgspec.UNSET
    if edit.credentials_ciphertext is not msgspec.UNSET and connector.status == ConnectorStatus.PENDING_AUTH:
        status = ConnectorStatus.CONNECTED
    event = ConnectorReconfigured(
        **envelope(meta, connector.id, connector.version + 1),
        display_name=msgspec.UNSET if name == connector.display_name else name,
        config=msgspec.UNSET if edit.config == connector.config else edit.config,
        schedule=msgspec.UNSET if edit.schedule == connector.schedule else edit.schedule,
        credentials_ciphertext=edit.credentials_ciphertext, status=status)
    changed = any(getattr(event, name) is not msgspec.UNSET for name in ConnectorEdit.__struct_fields__)
    return [event] if changed else []


def pause(connector: Connector, meta: Meta) -> list[ConnectorEvent]:
    """Pausing a paused connector records nothing; a paused connector is never synced."""
    if connector.status == ConnectorStatus.PAUSED:
        return []
    return [ConnectorPaused(**envelope(meta, connector.id, connector.version + 1))]


def resume(connector: Connector, meta: Meta) -> list[ConnectorEvent]:
    """Resuming a running connector records nothing; one still without credentials goes back to waiting."""
    if connector.status != ConnectorStatus.PAUSED:
        return []
    waiting = connector.entry.oauth and connector.credentials_ciphertext is None
    status = ConnectorStatus.PENDING_AUTH if waiting else ConnectorStatus.CONNECTED
    return [ConnectorResumed(**envelope(meta, connector.id, connector.version + 1), status=status)]


def delete(connector: Connector, meta: Meta) -> list[ConnectorEvent]:
    return [ConnectorDeleted(**envelope(meta, connector.id, connector.version + 1))]


# --- sync-run decisions ---

def check_syncable(connector: Connector) -> None:
    """Only a pollable, unpaused connector with its credentials syncs."""
    if not connector.entry.sync:
        raise SyncNotSupported(f"{connector.type} connectors are push-only: use the ingestion API or an inbound "
                               "webhook", type=connector.type)
    if connector.status == ConnectorStatus.PAUSED:
        raise InvalidTransition("a paused connector does not sync; resume it first", status=connector.status.value)
    if connector.status == ConnectorStatus.PENDING_AUTH or connector.credentials_ciphertext is None:
        raise InvalidTransition("the connector has no credentials yet", status=connector.status.value)


def queue_run(connector: Connector, *, run_id: UUID, connector_id: str, kind: RunKind, backfill_days: int | None,
              meta: Meta) -> SyncRunQueued:
    check_syncable(connector)
    if backfill_days is not None and not 1 <= backfill_days <= 365:
        raise InvalidValue("days", "must be 1–365")
    return SyncRunQueued(**envelope(meta, run_id, 1), connector_id=connector_id, kind=kind,
                         backfill_days=backfill_days)


def start_run(run: SyncRun, worker: str, meta: Meta) -> list[SyncRunEvent]:
    """A run starts once; a run already taken (by another worker) is left alone."""
    if run.status != RunStatus.QUEUED:
        raise InvalidTransition("the run is not queued", status=run.status.value)
    return [SyncRunStarted(**envelope(meta, run.id, run.version + 1), connector_id=run.connector_id, worker=worker)]


def progress(run: SyncRun, counts: Counts, meta: Meta) -> list[SyncRunEvent]:
    return [SyncRunProgressed(**envelope(meta, run.id, run.version + 1), connector_id=run.connector_id,
                              counts=counts)]


def succeed(run: SyncRun, connector: Connector | None, counts: Counts, cursor: Cursor, meta: Meta
            ) -> list[DomainEvent]:
    """The run's outcome, and the connector's new cursor (unless it was deleted meanwhile)."""
    events: list[DomainEvent] = [SyncRunSucceeded(**envelope(meta, run.id, run.version + 1),
                                                  connector_id=run.connector_id, counts=counts)]
    if connector is not None and not connector.deleted:
        events.append(ConnectorSynced(**envelope(meta, connector.id, connector.version + 1),
                                      run_id=_public_run(run), cursor=cursor, counts=counts))
    return events


def fail(run: SyncRun, connector: Connector | None, counts: Counts, error: str, meta: Meta) -> list[DomainEvent]:
    """The run failed; the connector shows the error and keeps its cursor."""
    error = error[:ERROR_MAX] or "unknown error"
    events: list[DomainEvent] = [SyncRunFailed(**envelope(meta, run.id, run.version + 1),
                                               connector_id=run.connector_id, counts=counts, error=error)]
    if connector is not None and not connector.deleted:
        events.append(ConnectorSyncFailed(**envelope(meta, connector.id, connector.version + 1),
                                          run_id=_public_run(run), error=error,
                                          consecutive_failures=connector.consecutive_failures + 1))
    return events


def _public_run(run: SyncRun) -> str:
    return render("run", run.id)


# --- inbound webhooks ---

def set_signing_secret(connector: Connector, secret_ciphertext: str, meta: Meta) -> list[ConnectorEvent]:
    return [ConnectorSigningSecretSet(**envelope(meta, connector.id, connector.version + 1),
                                      secret_ciphertext=secret_ciphertext)]
