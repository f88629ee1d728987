"""Only one relay publishes at a time; when the leader's session ends, the standby takes over."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from adapters.event_store import EventStore
from adapters.ids import new_uuid
from adapters.postgres import connect
from adapters.settings import Settings
from domain.issues.issue import open_issue
from tests.builders import meta
from tests.workers.pipeline import isolated
from workers import leadership

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


async def test_a_second_relay_stands_by_until_the_leader_goes_then_takes_over(settings: Settings) -> None:
    with isolated(settings) as s:
        stopping = asyncio.Event()
        leader = await leadership.acquire(s, "relay", stopping)
        assert leader is not None
        standby = asyncio.create_task(leadership.acquire(s, "relay", stopping, retry_s=0.05))
        await asyncio.sleep(0.3)  # the standby keeps retrying for a while: it must still be waiting
        assert not standby.done()

        await leader.close()  # the leader's session dies with its process
        successor = await asyncio.wait_for(standby, 5)

        assert successor is not None and await leadership.still_leading(successor)
        await successor.close()


async def test_the_standby_relay_publishes_what_the_leader_left_behind(settings: Settings) -> None:
    from workers.relay import run_relay

    with isolated(settings) as s:
        store = EventStore(s, pool_size=1)
        store.append([open_issue(issue_id=new_uuid(), meta=meta(), title=f"e{i}") for i in range(5)])
        head = store.head()
        store.close()
        squatter = await leadership.acquire(s, "relay", asyncio.Event())
        assert squatter is not None
        stopping = asyncio.Event()
        relay = asyncio.create_task(run_relay(s, stopping))
        await asyncio.sleep(0.5)
        assert await _relayed(s) == 0  # the standby published nothing while another held the lead

        await squatter.close()
        async with asyncio.timeout(10):
            while await _relayed(s) < head:
                await asyncio.sleep(0.05)
        stopping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await relay


async def _relayed(s: Settings) -> int:
    conn = await connect(s, autocommit=True)
    async with conn:
        cur = await conn.execute("SELECT position FROM relay_checkpoint WHERE name = 'relay'")
        row = await cur.fetchone()
        return int(row["position"]) if row else 0
