"""Writes the `ingestion` read model: each job's status row, folded with the domain's own fold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from domain.ids import render
from domain.ingestion import job as jobs
from domain.ingestion.events import IngestionJobEvent, folded_job
from projections.bulk_insert import upsert_newer

NAME = "ingestion"
VERSION = 2
"""2: `connector_id` (inbound deliveries and sync pages are ingestion jobs of their connector)."""
CATEGORIES = frozenset({"ingestion_job", "issue"})
"""`issue`: a one-signal push records its job on its issue event (`ingested_by`)."""
TABLES = ("ingestion_jobs",)
COLUMNS = ("workspace_id", "id", *(name for name in jobs.JobState.__struct_fields__ if name != "workspace_id"))


def _sql_type(name: str) -> str:
    """The column's Postgres type, from the field's annotation (schema.sql declares the same)."""
    annotation = str(jobs.JobState.__annotations__.get(name, "str"))
    return next((sql for python, sql in (("list", "jsonb"), ("datetime", "timestamptz"), ("int", "int"))
                 if annotation.startswith(python)), "text")


_UPSERT = upsert_newer("ingestion_jobs", [(name, _sql_type(name)) for name in COLUMNS])
_json = msgspec.json.Encoder()

Conn = AsyncConnection[dict[str, Any]]


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Apply `batch` inside the caller's transaction, one statement for all its jobs. A job is written by one event
    today (its own, or the issue event it was folded into), so it is folded from that event alone; a job of
    several events would load its row first."""
    changed: dict[tuple[str, str], jobs.JobState] = {}
    for _, event in batch:
        job = event if isinstance(event, IngestionJobEvent) else folded_job(event)
        if job is not None:
            key = (job.workspace_id, render("ing_job", job.originator_id))
            changed[key] = jobs.evolve(changed.get(key), job)
    if changed:
        rows = [_row(job_id, state) for (_, job_id), state in changed.items()]
        await conn.execute(_UPSERT, [list(column) for column in zip(*rows, strict=True)])


def _row(job_id: str, state: jobs.JobState) -> tuple[object, ...]:
    values: dict[str, object] = {**msgspec.structs.asdict(state), "id": job_id}
    values["rejected"] = _json.encode(state.rejected).decode()
    values["issue_ids"] = _json.encode(state.issue_ids).decode()
    values["status"] = state.status.value
    values["kind"] = state.kind.value
    return tuple(values[name] for name in COLUMNS)
