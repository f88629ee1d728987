"""Read-your-writes waits on checkpoint NOTIFYs; a checkpoint that advanced before the LISTEN began, and never
since, must still be seen (found by the accepted-is-projectable invariant test: a wait timed out at the head)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.postgres import connect
from adapters.settings import Settings
from projections import checkpoints
from projections.position_waiter import PositionWaiter
from tests.workers.pipeline import isolated

pytestmark = [pytest.mark.postgres]


async def test_a_checkpoint_reached_before_listening_began_is_seen_without_another_advance(
        settings: Settings) -> None:
    with isolated(settings) as own:
        async with await connect(own, autocommit=True) as conn, conn.transaction():
            await checkpoints.lock(conn, "issues")
            await checkpoints.advance(conn, own.database_schema, "issues", 42, 0)
        waiter = PositionWaiter(own)
        await waiter.start()
        try:
            await asyncio.wait_for(waiter._listening.wait(), 10)  # LISTEN in place: no NOTIFY for "issues" will come
            assert await waiter.wait("issues", 42, 2.0)
        finally:
            await waiter.stop()
