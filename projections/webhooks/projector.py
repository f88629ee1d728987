"""Writes the `webhooks` read model: endpoints, folded per batch and upserted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from domain.ids import render
from domain.webhooks.events import WebhookEvent
from projections.keyed_rows import rows_by_key
from projections.webhooks.view import EndpointRow, apply_endpoint

NAME = "webhooks"
VERSION = 1
CATEGORIES = frozenset({"webhook"})
TABLES = ("webhook_endpoints",)

Conn = AsyncConnection[dict[str, Any]]
COLUMNS = EndpointRow.__struct_fields__
_UPSERT = (f"INSERT INTO webhook_endpoints ({', '.join(COLUMNS)}) VALUES ({', '.join(f'%({c})s' for c in COLUMNS)})"
           f" ON CONFLICT (workspace_id, id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in COLUMNS[2:])}"
           " WHERE webhook_endpoints.version < excluded.version")


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Apply `batch` (in position order, past the checkpoint) inside the caller's transaction."""
    keys = {(str(e.workspace_id), render("whk", e.originator_id)) for _, e in batch if isinstance(e, WebhookEvent)}
    if not keys:
        return
    rows = {(str(row["workspace_id"]), str(row["id"])): msgspec.convert(row, EndpointRow, strict=False)
            for row in await rows_by_key(conn, "webhook_endpoints", COLUMNS, keys)}
    changed: dict[tuple[str, str], EndpointRow] = {}
    for _, event in batch:
        if isinstance(event, WebhookEvent):
            key = (str(event.workspace_id), render("whk", event.originator_id))
            row = apply_endpoint(rows.get(key), event)
            if row is not None and row is not rows.get(key):
                rows[key] = changed[key] = row
    async with conn.pipeline():
        for row in changed.values():
            await conn.execute(_UPSERT, msgspec.structs.asdict(row))
