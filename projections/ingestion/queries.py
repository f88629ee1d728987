"""Queries over the `ingestion` read model (inside a tenant transaction: RLS)."""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg import AsyncConnection

from domain.ingestion.job import JobState
from projections.ingestion.projector import COLUMNS

Conn = AsyncConnection[dict[str, Any]]
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM ingestion_jobs WHERE workspace_id = %s AND id = %s"


async def get_job(conn: Conn, workspace_id: str, job_id: str) -> JobState | None:
    async with conn.cursor() as cur:
        await cur.execute(_SELECT, (workspace_id, job_id))
        row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, JobState, strict=False)
