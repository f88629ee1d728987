"""Writes the `connectors` read model: connectors and sync runs, folded per batch and upserted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from adapters.codec import AnyEvent
from domain.connectors.events import ConnectorEvent, SyncRunEvent
from domain.ids import render
from projections.connectors.view import ConnectorRow, SyncRunView, apply_connector, apply_run
from projections.keyed_rows import rows_by_key

NAME = "connectors"
VERSION = 1
CATEGORIES = frozenset({"connector", "sync_run"})
TABLES = ("connectors", "sync_runs")

Conn = AsyncConnection[dict[str, Any]]
R = TypeVar("R", ConnectorRow, SyncRunView)
CONNECTOR_COLUMNS = ConnectorRow.__struct_fields__
RUN_COLUMNS = SyncRunView.__struct_fields__


def _upsert(table: str, fields: tuple[str, ...]) -> str:
    names = ", ".join(fields)
    values = ", ".join(f"%({name})s" for name in fields)
    updates = ", ".join(f"{name} = excluded.{name}" for name in fields if name not in ("workspace_id", "id"))
    return (f"INSERT INTO {table} ({names}) VALUES ({values}) ON CONFLICT (workspace_id, id) DO UPDATE SET "
            f"{updates} WHERE {table}.version < excluded.version")


_UPSERT_CONNECTOR = _upsert("connectors", CONNECTOR_COLUMNS)
_UPSERT_RUN = _upsert("sync_runs", RUN_COLUMNS)


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Apply `batch` (in position order, past the checkpoint) inside the caller's transaction."""
    connectors = await _fold(conn, batch, ConnectorEvent, "con", "connectors", ConnectorRow, apply_connector)
    runs = await _fold(conn, batch, SyncRunEvent, "run", "sync_runs", SyncRunView, apply_run)
    async with conn.pipeline():
        for connector in connectors:
            values = msgspec.structs.asdict(connector)
            values["config"] = Jsonb(values["config"])
            await conn.execute(_UPSERT_CONNECTOR, values)
        for run in runs:
            await conn.execute(_UPSERT_RUN, msgspec.structs.asdict(run))


async def _fold(conn: Conn, batch: Sequence[tuple[int, AnyEvent]], kind: type[Any], prefix: str, table: str,
                row_type: type[R], apply: Callable[[Any, Any], Any]) -> list[R]:
    keys = {(str(e.workspace_id), render(prefix, e.originator_id)) for _, e in batch if isinstance(e, kind)}
    if not keys:
        return []
    rows = {(str(row["workspace_id"]), str(row["id"])): msgspec.convert(row, row_type, strict=False)
            for row in await rows_by_key(conn, table, row_type.__struct_fields__, keys)}
    changed: dict[tuple[str, str], R] = {}
    for _, event in batch:
        if isinstance(event, kind):
            key = (str(event.workspace_id), render(prefix, event.originator_id))
            after = apply(rows.get(key), event)
            if after is not None and after is not rows.get(key):
                rows[key] = changed[key] = after
    return list(changed.values())
