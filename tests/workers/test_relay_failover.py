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

        assert successor is not None
        assert await _lock_holders(s) == [successor.info.backend_pid]
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


async def test_a_relay_whose_session_is_killed_steps_down_and_relays_again_once_reelected(settings: Settings) -> None:
    """The relay reads the log on its leadership session: a killed session fails the read, ends the term, and the
    relay is elected again on a new session and relays what came after."""
    from workers.relay import run_relay

    with isolated(settings) as s:
        store = EventStore(s, pool_size=1)
        try:
            store.append([open_issue(issue_id=new_uuid(), meta=meta(), title="before")])
            stopping = asyncio.Event()
            relay = asyncio.create_task(run_relay(s, stopping))
            async with asyncio.timeout(10):
                while await _relayed(s) < store.head():
                    await asyncio.sleep(0.05)

            holders = await _lock_holders(s)
            assert len(holders) == 1
            await _terminate(s, holders[0])
            store.append([open_issue(issue_id=new_uuid(), meta=meta(), title=f"after {i}") for i in range(3)])
            async with asyncio.timeout(15):
                while await _relayed(s) < store.head():
                    await asyncio.sleep(0.05)
            assert not relay.done()
            stopping.set()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        finally:
            store.close()


async def _lock_holders(s: Settings) -> list[int]:
    """The backend pids holding this test schema's relay advisory lock."""
    conn = await connect(s, autocommit=True)
    async with conn:
        cur = await conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
                                 " AND objid = hashtext(%s)::oid AND granted", (f"{s.database_schema}:relay",))
        return [int(row["pid"]) for row in await cur.fetchall()]


async def _terminate(s: Settings, pid: int) -> None:
    conn = await connect(s, autocommit=True)
    async with conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
