"""Leader election with a Postgres session advisory lock: whoever holds the session holds the role."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from adapters.postgres import AsyncConn, connect
from adapters.settings import Settings

log = logging.getLogger(__name__)


async def acquire(settings: Settings, role: str, stopping: asyncio.Event, retry_s: float = 1.0) -> AsyncConn | None:
    """Block until this process leads `role` (returns the lock-holding connection) or `stopping` is set.

    The lock dies with the connection, so a standby takes over as soon as the leader's session ends.
    """
    return await acquire_all(settings, [role], stopping, retry_s)


async def acquire_all(settings: Settings, roles: list[str], stopping: asyncio.Event,
                      retry_s: float = 1.0) -> AsyncConn | None:
    """`acquire` for several roles on one session: all of them or none (a partial hold is let go and retried)."""
    keys = [f"{settings.database_schema}:{role}" for role in sorted(roles)]
    while not stopping.is_set():
        try:
            conn = await connect(settings, autocommit=True)
        except psycopg.OperationalError as exc:
            log.warning("cannot reach Postgres for %s leadership: %s", ", ".join(roles), exc)
        else:
            if await _try_all(conn, keys):
                log.info("leading %s", ", ".join(sorted(roles)))
                return conn
            await conn.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), retry_s)
    return None


async def _try_all(conn: AsyncConn, keys: list[str]) -> bool:
    for key in keys:
        cur = await conn.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS ok", (key,))
        row = await cur.fetchone()
        if row is None or not row["ok"]:
            await conn.execute("SELECT pg_advisory_unlock_all()")
            return False
    return True

