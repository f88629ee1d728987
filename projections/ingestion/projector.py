"""Writes the `ingestion` read model: each job's status row, folded with the domain's own fold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from domain.ids import render
from domain.ingestion import job as jobs
from domain.ingestion.events import IngestionJobEvent

NAME = "ingestion"
VERSION = 2
"""2: `connector_id` (inbound deliveries and sync pages are ingestion jobs of their connector)."""
CATEGORIES = frozenset({"ingestion_job"})
TABLES = ("ingestion_jobs",)
COLUMNS = ("workspace_id", "id", *(name for name in jobs.JobState.__struct_fields__ if name != "workspace_id"))
_JSON_COLUMNS = {"rejected", "issue_ids"}
_UPSERT = (f"INSERT INTO ingestion_jobs ({', '.join(COLUMNS)}) VALUES ("
           + ", ".join(f"%({name})s::jsonb" if name in _JSON_COLUMNS else f"%({name})s" for name in COLUMNS)
           + ") ON CONFLICT (workspace_id, id) DO UPDATE SET "
           + ", ".join(f"{name} = excluded.{name}" for name in COLUMNS[2:])
           + " WHERE ingestion_jobs.version < excluded.version")
_json = msgspec.json.Encoder()

Conn = AsyncConnection[dict[str, Any]]


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Apply `batch` inside the caller's transaction. A job is written by one event today, so it is folded from
    that event alone; a job of several events would load its row first."""
    changed: dict[tuple[str, str], jobs.JobState] = {}
    for _, event in batch:
        if isinstance(event, IngestionJobEvent):
            key = (event.workspace_id, render("ing_job", event.originator_id))
            changed[key] = jobs.evolve(changed.get(key), event)
    if not changed:
        return
    async with conn.pipeline():
        for (_, job_id), state in changed.items():
            await conn.execute(_UPSERT, _row(job_id, state))


def _row(job_id: str, state: jobs.JobState) -> dict[str, object]:
    row: dict[str, object] = {**msgspec.structs.asdict(state), "id": job_id}
    row["rejected"] = _json.encode(state.rejected).decode()
    row["issue_ids"] = _json.encode(state.issue_ids).decode()
    row["status"] = state.status.value
    row["kind"] = state.kind.value
    return row
