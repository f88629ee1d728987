"""The promises of architecture.md, each proven against real Postgres and real JetStream."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from adapters import codec
from adapters.event_store import EventStore
from adapters.ids import new_uuid
from adapters.nats import connect as nats_connect
from adapters.nats import ensure_stream
from adapters.postgres import READER_ROLE, connect, create_pool
from adapters.settings import Settings
from commands.issues import OpenIssue, issue_id_of
from domain.issues.issue import open_issue
from projections.registry import PROJECTIONS
from tests.builders import meta
from tests.workers.pipeline import (
    assert_read_model_matches_the_event_store,
    caller,
    expected_counts,
    expected_views,
    isolated,
    issue_commands,
    publish_raw,
    read_model,
    running,
    store_of,
    stored_positions,
    wait_for_projection,
    write_history,
)
from workers import relay
from workers.operations import rebuild
from workers.projector_runner import ProjectorRunner, _decode, consumer_name

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


def test_concurrent_appenders_reach_a_tailing_reader_exactly_once_in_order(settings: Settings) -> None:
    with isolated(settings) as s:
        seen: list[int] = []
        done = threading.Event()

        def tail() -> None:
            store = EventStore(s, pool_size=1)
            last = 0
            while True:
                finished = done.is_set()
                page = store.read_raw(last, 500)
                seen.extend(position for position, _ in page)
                last = page[-1][0] if page else last
                if finished and not page:
                    break
            store.close()

        def append(worker: int) -> None:
            store = EventStore(s, pool_size=1)
            for i in range(40):
                store.append([open_issue(issue_id=new_uuid(), meta=meta(), title=f"w{worker} #{i}")])
            store.close()

        reader = threading.Thread(target=tail)
        reader.start()
        writers = [threading.Thread(target=append, args=(n,)) for n in range(8)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        done.set()
        reader.join()

        assert len(seen) == 8 * 40
        assert seen == sorted(set(seen)) == stored_positions(s)


def test_a_slow_writer_stalls_no_reader_and_is_delivered_once_it_commits(settings: Settings) -> None:
    with isolated(settings) as s:
        store = EventStore(s, pool_size=2)
        first = store.append([open_issue(issue_id=new_uuid(), meta=meta(), title="before")])[0]
        slow = psycopg.connect(s.database_url, options=f"-c search_path={s.database_schema}")
        slow.execute("LOCK TABLE causeloop_events IN EXCLUSIVE MODE")
        event = open_issue(issue_id=new_uuid(), meta=meta(), title="slow")
        slow.execute("INSERT INTO causeloop_events (originator_id, originator_version, topic, state)"
                     " VALUES (%s, 1, 'IssueOpened', %s)", (event.originator_id, codec.encode(event)))
        late: list[int] = []
        fast = threading.Thread(target=lambda: late.extend(store.append(
            [open_issue(issue_id=new_uuid(), meta=meta(), title="after")])))
        fast.start()

        during = store.read_raw(first, 100)
        slow.commit()
        fast.join()
        after = store.read_raw(first, 100)
        slow.close()
        store.close()

        assert during == []
        assert [codec.decode(state).title for _, state in after] == ["slow", "after"]  # type: ignore[union-attr]
        assert after[1][0] == late[0]


async def test_every_event_reaches_the_read_model_once_through_relay_and_projector(settings: Settings) -> None:
    with isolated(settings) as s:
        head = await asyncio.to_thread(write_history, s)

        async with running(s):
            await wait_for_projection(s, head)
            assert await _unacked(s, consumer_name([PROJECTIONS["issues"]])) == 0  # each batch acked whole

        views, activity, comments, counts = read_model(s)
        assert views == expected_views(s)
        assert counts == expected_counts(views)
        assert [row[2] for row in activity] == stored_positions(s)
        assert len(comments) == 15


async def test_a_relay_killed_between_puback_and_checkpoint_changes_nothing(settings: Settings) -> None:
    with isolated(settings) as s:
        head = await asyncio.to_thread(write_history, s)
        nc = await nats_connect(s, name="crashing-relay")
        js = nc.jetstream()
        await ensure_stream(js, s)
        store = EventStore(s, pool_size=1)
        await relay.publish(js, s, store_of(s), store.read_raw(0, 1000))  # published and acked, no checkpoint
        store.close()
        await nc.close()

        async with running(s):
            await wait_for_projection(s, head)

        assert_read_model_matches_the_event_store(s)


@pytest.mark.parametrize("hosted", [("issues",), tuple(PROJECTIONS)], ids=["alone", "every-read-model"])
async def test_a_projector_killed_between_commit_and_ack_applies_each_event_once(
        settings: Settings, hosted: tuple[str, ...]) -> None:
    with isolated(settings) as s:
        head = await asyncio.to_thread(write_history, s)
        async with running(s, projector=False):
            nc = await nats_connect(s, name="crashing-projector")
            pool = create_pool(s, min_size=1, max_size=1)
            await pool.open()
            await ensure_stream(nc.jetstream(), s)
            runner = ProjectorRunner(s, [PROJECTIONS[name] for name in hosted], pool, nc.jetstream())
            sub = await runner.subscribe()
            batch = await sub.fetch(10, timeout=10)
            await runner.commit(runner.projections,  # never acked
                                [_decode(msg, runner.categories, runner.store) for msg in batch])
            await pool.close()
            await nc.close()

            async with running(s, relay=False, projections=hosted):
                await wait_for_projection(s, head)

        assert_read_model_matches_the_event_store(s)


async def test_every_event_delivered_three_times_leaves_the_read_model_as_one_delivery_would(
        settings: Settings) -> None:
    with isolated(settings) as s:
        head = await asyncio.to_thread(write_history, s)
        async with running(s, projector=False):
            await _wait_relayed(s, head)
        await publish_raw(s, copies=2)

        async with running(s, relay=False):
            await wait_for_projection(s, head)

        assert_read_model_matches_the_event_store(s)


async def test_a_rebuild_from_zero_equals_the_live_read_model(settings: Settings) -> None:
    with isolated(settings) as s:
        head = await asyncio.to_thread(write_history, s)
        async with running(s):
            await wait_for_projection(s, head)
            live = read_model(s)

            await asyncio.to_thread(rebuild, s, "issues")
            rebuilt = read_model(s)

            with issue_commands(s) as (_, commands):
                accepted = await commands.open_issue(OpenIssue(title="after rebuild"), caller())
            await wait_for_projection(s, accepted.position)

        assert rebuilt == live
        assert issue_id_of(accepted) in read_model(s)[0]


async def test_a_rebuild_while_the_projector_of_every_read_model_keeps_writing_loses_nothing(
        settings: Settings) -> None:
    with isolated(settings) as s:
        head = await asyncio.to_thread(write_history, s)
        async with running(s, projections=tuple(PROJECTIONS)):
            await wait_for_projection(s, head)
            stop = asyncio.Event()

            async def keep_writing() -> int:
                last = 0
                with issue_commands(s) as (_, commands):
                    while not stop.is_set():
                        last = (await commands.open_issue(OpenIssue(title="during rebuild"), caller())).position
                        await asyncio.sleep(0.005)
                return last

            writer = asyncio.create_task(keep_writing())
            await asyncio.to_thread(rebuild, s, "issues")
            stop.set()
            last = await writer
            assert last > head  # the rebuild really raced live writes
            await wait_for_projection(s, last)
            await wait_for_projection(s, last, name="audit")

        assert_read_model_matches_the_event_store(s)


async def test_a_query_without_a_workspace_filter_sees_only_its_own_workspace(settings: Settings) -> None:
    with isolated(settings) as s:
        await asyncio.to_thread(write_history, s, 3, "ws_01KV1PX3NQ3B497SHK7JTNT525")
        head = await asyncio.to_thread(write_history, s, 2, "ws_01KV1PX3NQ3B497SHK7JTNT999")
        async with running(s):
            await wait_for_projection(s, head)

        conn = await connect(s)
        async with conn, conn.transaction():
            await conn.execute("SELECT set_config('role', %s, true), set_config('causeloop.workspace_id', %s, true)",
                               (READER_ROLE, "ws_01KV1PX3NQ3B497SHK7JTNT999"))
            cur = await conn.execute("SELECT DISTINCT workspace_id FROM issues")  # no WHERE on purpose
            visible = [row["workspace_id"] for row in await cur.fetchall()]
            cur = await conn.execute("SELECT count(*) AS n FROM issue_activity")
            activity = (await cur.fetchone() or {})["n"]
            cur = await conn.execute("SELECT count(*) AS n FROM issue_search('disk')")  # runs as the writer role
            searched = (await cur.fetchone() or {})["n"]

        assert visible == ["ws_01KV1PX3NQ3B497SHK7JTNT999"]
        assert activity == 4  # issue 0: opened, commented, closed; issue 1: opened
        assert searched == 2  # the search function, too, sees only the transaction's workspace


async def _wait_relayed(s: Settings, head: int) -> None:
    conn = await connect(s, autocommit=True)
    async with conn:
        await conn.execute("LISTEN causeloop_events")
        for _ in range(200):
            cur = await conn.execute("SELECT position FROM relay_checkpoint WHERE name = 'relay'")
            row = await cur.fetchone()
            if row and int(row["position"]) >= head:
                return
            async for _ in conn.notifies(timeout=0.1, stop_after=1):
                pass
    raise AssertionError("relay never caught up")



async def test_a_projector_retires_the_consumers_of_earlier_versions_and_groupings_of_its_read_models(
        settings: Settings) -> None:
    with isolated(settings) as s:
        head = await asyncio.to_thread(write_history, s, 3)
        nc = await nats_connect(s, name="consumer-setup")
        js = nc.jetstream()
        await ensure_stream(js, s)
        stale = ["proj-issues-v1", "proj-audit-v1-issues-v2"]
        for name in [*stale, "someone-elses"]:
            await js.add_consumer(s.nats_stream, ConsumerConfig(durable_name=name, ack_policy=AckPolicy.EXPLICIT))

        async with running(s, projections=tuple(PROJECTIONS)):
            await wait_for_projection(s, head)
            left = {info.name for info in await js.consumers_info(s.nats_stream)}
        await nc.close()

        assert consumer_name([PROJECTIONS[name] for name in PROJECTIONS]) in left
        assert "someone-elses" in left
        assert not left & set(stale)


async def _unacked(s: Settings, durable: str) -> int:
    """Deliveries the consumer still waits an ack for, once the projector's last ack has reached the server."""
    nc = await nats_connect(s, name="test-acks")
    try:
        js = nc.jetstream()
        async with asyncio.timeout(5):
            while (info := await js.consumer_info(s.nats_stream, durable)).num_ack_pending:
                await asyncio.sleep(0.05)
        return int(info.num_ack_pending) + int(info.num_pending)
    except TimeoutError:
        return int((await js.consumer_info(s.nats_stream, durable)).num_ack_pending)
    finally:
        await nc.close()
