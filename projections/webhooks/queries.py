"""Queries over webhook endpoints and their deliveries (run inside a tenant transaction: RLS narrows the rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters.postgres import READER_ROLE
from projections.webhooks.projector import COLUMNS
from projections.webhooks.view import EndpointRow

Conn = AsyncConnection[dict[str, Any]]


class DeliveryAttempt(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    started_at: datetime
    latency_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None
    succeeded: bool


class DeliveryRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    kind: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    redeliveries: int


_DELIVERY_COLUMNS = ", ".join(DeliveryRow.__struct_fields__)


async def list_endpoints(conn: Conn, workspace_id: str, *, after: tuple[datetime, str] | None,
                         limit: int) -> tuple[list[EndpointRow], int]:
    """(page, total) of the live endpoints, oldest first."""
    count = await conn.execute("SELECT count(*) AS n FROM webhook_endpoints WHERE workspace_id = %s AND NOT deleted",
                               (workspace_id,))
    total = await count.fetchone()
    where, params = "workspace_id = %s AND NOT deleted", [workspace_id]
    if after is not None:
        where += " AND (created_at, id) > (%s, %s)"
        params.extend(after)  # type: ignore[arg-type]
    cur = await conn.execute(f"SELECT {', '.join(COLUMNS)} FROM webhook_endpoints WHERE {where} "
                             "ORDER BY created_at, id LIMIT %s", [*params, limit])
    rows = [msgspec.convert(row, EndpointRow, strict=False) for row in await cur.fetchall()]
    return rows, int(str(total["n"])) if total else 0


async def get_endpoint(conn: Conn, workspace_id: str, webhook_id: str) -> EndpointRow | None:
    cur = await conn.execute(f"SELECT {', '.join(COLUMNS)} FROM webhook_endpoints WHERE workspace_id = %s AND id = %s"
                             " AND NOT deleted", (workspace_id, webhook_id))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, EndpointRow, strict=False)


async def list_deliveries(conn: Conn, workspace_id: str, webhook_id: str, *, status: str | None,
                          before: tuple[datetime, str] | None, limit: int) -> tuple[list[DeliveryRow], int]:
    """(page, total) of an endpoint's deliveries, newest first."""
    where, params = "workspace_id = %s AND endpoint_id = %s", [workspace_id, webhook_id]
    if status is not None:
        where += " AND status = %s"
        params.append(status)
    count = await conn.execute(f"SELECT count(*) AS n FROM webhook_deliveries WHERE {where}", params)
    total = await count.fetchone()
    keyset: list[object] = []
    if before is not None:
        where += " AND (created_at, id) < (%s, %s)"
        keyset.extend(before)
    cur = await conn.execute(f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {where} "
                             "ORDER BY created_at DESC, id DESC LIMIT %s", [*params, *keyset, limit])
    rows = [msgspec.convert(row, DeliveryRow, strict=False) for row in await cur.fetchall()]
    return rows, int(str(total["n"])) if total else 0


async def attempts_of(conn: Conn, workspace_id: str, delivery_ids: list[str]) -> dict[str, list[DeliveryAttempt]]:
    found: dict[str, list[DeliveryAttempt]] = {delivery: [] for delivery in delivery_ids}
    if not delivery_ids:
        return found
    cur = await conn.execute(
        "SELECT delivery_id, attempt, started_at, latency_ms, status_code, error, response_body, succeeded"
        " FROM webhook_attempts WHERE workspace_id = %s AND delivery_id = ANY(%s) ORDER BY delivery_id, attempt",
        (workspace_id, delivery_ids))
    for row in await cur.fetchall():
        found[str(row.pop("delivery_id"))].append(msgspec.convert(row, DeliveryAttempt, strict=False))
    return found


async def get_delivery(conn: Conn, workspace_id: str, delivery_id: str) -> DeliveryRow | None:
    cur = await conn.execute(f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE workspace_id = %s AND id = %s",
                             (workspace_id, delivery_id))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, DeliveryRow, strict=False)


class ConnectorSecret(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook that references a connector, with its sealed secrets (open with the master key, owner `webhook_id`)."""

    workspace_id: str
    webhook_id: str
    secret_ciphertext: str
    previous_secret_ciphertext: str | None
    previous_valid_until: datetime | None


async def connector_secrets(conn: Conn, connector_id: str) -> list[ConnectorSecret]:
    """The signing secrets that verify inbound deliveries of `connector_id` (docs-facts 10.5), across workspaces:
    a SECURITY DEFINER function (delivery.sql), for the public inbound route, which has no tenant yet."""
    async with conn.transaction():
        await conn.execute("SELECT set_config('role', %s, true)", (READER_ROLE,))
        cur = await conn.execute("SELECT * FROM connector_signing_secrets(%s)", (connector_id,))
        rows = await cur.fetchall()
    return [msgspec.convert(row, ConnectorSecret, strict=False) for row in rows]
