"""Liveness, readiness and Prometheus metrics (outside /v1, no auth)."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn
from projections.status import pipeline_status, prometheus_text


class HealthResponse(msgspec.Struct, kw_only=True):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


@get("/health", include_in_schema=True, tags=["Operations"])
async def get_health() -> HealthResponse:
    """Liveness: the process is up."""
    return HealthResponse(status="ok")


@get("/ready", tags=["Operations"], responses={503: ResponseSpec(
    HealthResponse, generate_examples=False, description="Not ready: `checks` name what is down")})
async def get_readiness(state: State) -> Response[HealthResponse]:
    """Readiness: Postgres and NATS reachable, migrations applied."""
    checks = {"postgres": "ok", "nats": "ok", "migrations": "ok"}
    pool: AsyncConnectionPool[AsyncConn] = state.read_pool
    try:
        async with pool.connection(timeout=2) as conn:
            cur = await conn.execute("SELECT count(*) AS n FROM schema_migrations")
            row = await cur.fetchone()
            if not row or not row["n"]:
                checks["migrations"] = "missing"
    except Exception as exc:
        checks["postgres"] = f"unreachable: {type(exc).__name__}"
        checks["migrations"] = "unknown"
    nats_client = state.nats
    if nats_client is None or not nats_client.is_connected:
        checks["nats"] = "unreachable"
    ok = all(value == "ok" for value in checks.values())
    return Response(HealthResponse(status="ok" if ok else "unavailable", checks=checks),
                    status_code=200 if ok else 503)


@get("/metrics", media_type="text/plain; version=0.0.4", tags=["Operations"])
async def get_metrics(state: State) -> str:
    """Prometheus text: event-store head, relay and projection checkpoints, lag, parked messages."""
    pool: AsyncConnectionPool[AsyncConn] = state.read_pool
    async with pool.connection() as conn:
        status = await pipeline_status(conn)
    return prometheus_text(status)
