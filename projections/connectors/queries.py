"""Queries over the `connectors` read model: tenant reads (RLS) for the API, cross-workspace ones for the worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from projections.connectors.view import ConnectorRow, ConnectorView, SyncRunView

Conn = AsyncConnection[dict[str, Any]]
_CONNECTOR = ", ".join(ConnectorView.__struct_fields__)
_RUN = ", ".join(SyncRunView.__struct_fields__)


async def list_connectors(conn: Conn, workspace_id: str, *, after: tuple[datetime, str] | None, limit: int
                          ) -> tuple[list[ConnectorView], int]:
    """(page, total) of the live connectors, oldest first."""
    where, params = "workspace_id = %s AND NOT deleted", [workspace_id]
    count = await conn.execute(f"SELECT count(*) AS n FROM connectors WHERE {where}", params)
    total = await count.fetchone()
    if after is not None:
        where += " AND (created_at, id) > (%s, %s)"
        params.extend(after)  # type: ignore[arg-type]
    cur = await conn.execute(f"SELECT {_CONNECTOR} FROM connectors WHERE {where} ORDER BY created_at, id LIMIT %s",
                             [*params, limit])
    rows = [msgspec.convert(row, ConnectorView, strict=False) for row in await cur.fetchall()]
    return rows, int(str(total["n"])) if total else 0


async def connector_ids_of_type(conn: Conn, workspace_id: str, connector_type: str) -> list[str]:
    """The live connectors of one type, oldest first (a recommendation push picks its tracker's among them)."""
    cur = await conn.execute("SELECT id FROM connectors WHERE workspace_id = %s AND type = %s AND NOT deleted "
                             "ORDER BY created_at, id LIMIT 100", (workspace_id, connector_type))
    return [str(row["id"]) for row in await cur.fetchall()]


async def get_connector(conn: Conn, workspace_id: str, connector_id: str) -> ConnectorView | None:
    cur = await conn.execute(f"SELECT {_CONNECTOR} FROM connectors WHERE workspace_id = %s AND id = %s "
                             "AND NOT deleted", (workspace_id, connector_id))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, ConnectorView, strict=False)


async def list_runs(conn: Conn, workspace_id: str, connector_id: str, *, after: tuple[datetime, str] | None,
                    limit: int) -> tuple[list[SyncRunView], int]:
    """(page, total) of a connector's runs, newest first."""
    where, params = "workspace_id = %s AND connector_id = %s", [workspace_id, connector_id]
    count = await conn.execute(f"SELECT count(*) AS n FROM sync_runs WHERE {where}", params)
    total = await count.fetchone()
    if after is not None:
        where += " AND (queued_at, id) < (%s, %s)"
        params.extend(after)  # type: ignore[arg-type]
    cur = await conn.execute(f"SELECT {_RUN} FROM sync_runs WHERE {where} ORDER BY queued_at DESC, id DESC "
                             "LIMIT %s", [*params, limit])
    rows = [msgspec.convert(row, SyncRunView, strict=False) for row in await cur.fetchall()]
    return rows, int(str(total["n"])) if total else 0


async def get_run(conn: Conn, workspace_id: str, run_id: str) -> SyncRunView | None:
    cur = await conn.execute(f"SELECT {_RUN} FROM sync_runs WHERE workspace_id = %s AND id = %s",
                             (workspace_id, run_id))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, SyncRunView, strict=False)


# --- for the sync worker and the operator CLI (writer role: every workspace) ---

async def queued_runs(conn: Conn, limit: int) -> list[SyncRunView]:
    """Runs waiting for a worker, oldest first."""
    cur = await conn.execute(f"SELECT {_RUN} FROM sync_runs WHERE status = 'queued' ORDER BY queued_at, id "
                             "LIMIT %s", (limit,))
    return [msgspec.convert(row, SyncRunView, strict=False) for row in await cur.fetchall()]


async def running_runs(conn: Conn, started_before: datetime, limit: int) -> list[SyncRunView]:
    """Runs shown as running since before `started_before` (their worker may have died)."""
    cur = await conn.execute(f"SELECT {_RUN} FROM sync_runs WHERE status = 'running' AND started_at < %s "
                             "ORDER BY started_at, id LIMIT %s", (started_before, limit))
    return [msgspec.convert(row, SyncRunView, strict=False) for row in await cur.fetchall()]


async def schedulable_connectors(conn: Conn) -> list[tuple[ConnectorRow, bool]]:
    """Live connectors that may sync (connected, or in error and due a retry), each with whether a run of it is
    already queued or running."""
    columns = ", ".join(f"c.{name}" for name in ConnectorRow.__struct_fields__)
    cur = await conn.execute(
        f"SELECT {columns}, EXISTS (SELECT 1 FROM sync_runs r WHERE r.workspace_id = c.workspace_id "
        "AND r.connector_id = c.id AND r.status IN ('queued', 'running')) AS busy "
        "FROM connectors c WHERE NOT c.deleted AND c.status IN ('connected', 'error') AND c.has_credentials")
    found = []
    for row in await cur.fetchall():
        busy = bool(row.pop("busy"))
        found.append((msgspec.convert(row, ConnectorRow, strict=False), busy))
    return found


async def find_connector(conn: Conn, connector_id: str) -> ConnectorView | None:
    """A connector by id in any workspace (the operator CLI)."""
    cur = await conn.execute(f"SELECT {_CONNECTOR} FROM connectors WHERE id = %s AND NOT deleted", (connector_id,))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, ConnectorView, strict=False)


async def find_run(conn: Conn, run_id: str) -> SyncRunView | None:
    cur = await conn.execute(f"SELECT {_RUN} FROM sync_runs WHERE id = %s", (run_id,))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, SyncRunView, strict=False)
