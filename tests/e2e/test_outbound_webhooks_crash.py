"""A crash never duplicates a delivery decision: the worker that decided (committed with its checkpoint) and died
before acking leaves exactly one delivery, which a new worker sends exactly once; and deciding the same events again
(as if the checkpoint had been lost) adds nothing, because a delivery is unique per (endpoint, event)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import AsyncTestClient
from nats.aio.msg import Msg

from adapters import codec
from adapters.event_store import EventStore
from adapters.nats import connect as nats_connect
from adapters.nats import ensure_stream, fetch_batch
from adapters.postgres import create_pool, writer_transaction
from adapters.settings import Settings
from api.app import create_app
from tests.e2e.conftest import Tenant, Workers, event_store, running_workers
from tests.e2e.webhook_receiver import Receiver
from tests.e2e.webhooks_support import Clock, DeliveryWorker, create_webhook, eventually, open_issue
from tests.workers.pipeline import isolated
from workers.projector_runner import ProjectorRunner
from workers.webhook_delivery import DISPATCH

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]


class Crash(Exception):
    """The process dies right after the decision's commit, before the ack."""


@pytest.fixture(scope="module")
def own_settings(settings: Settings) -> Iterator[Settings]:
    with isolated(msgspec.structs.replace(settings, webhooks_allow_private_targets=True,
                                          webhooks_poll_interval_s=0.05)) as own:
        yield own


@pytest.fixture(scope="module")
def own_workers(own_settings: Settings) -> Iterator[Workers]:
    with running_workers(own_settings) as running:
        yield running


@pytest.fixture(scope="module")
def own_store(own_settings: Settings) -> Iterator[EventStore]:
    with event_store(own_settings) as store:
        yield store


@pytest.fixture
async def own_api(own_settings: Settings, own_workers: Workers) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(own_settings, configure_logging=False)) as client:
        yield client


def delivery_rows(settings: Settings, endpoint_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        return conn.execute("SELECT id, event_id, status FROM webhook_deliveries WHERE endpoint_id = %s",
                            (endpoint_id,)).fetchall()


async def decide_and_crash_before_ack(settings: Settings, head: int) -> list[Msg]:
    """One dispatcher pass over every message up to `head`, whose ack never happens."""
    nc = await nats_connect(settings, name="crashing-dispatcher")
    pool = create_pool(settings, min_size=1, max_size=2, name="crashing-dispatcher")
    await pool.open()
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings)
        runner = ProjectorRunner(settings, [DISPATCH], pool, js)
        sub = await runner.subscribe()
        seen: list[Msg] = []
        while not seen or max(int((m.headers or {}).get("Causeloop-Position", 0)) for m in seen) < head:
            batch = await fetch_batch(sub, 500, 5.0)
            assert batch, "the stream never reached the store's head"
            seen += batch

        async def crash(*args: object, **kwargs: object) -> None:
            raise Crash

        for msg in seen:
            msg.ack = crash  # type: ignore[method-assign]
        with pytest.raises(Crash):
            await runner.handle(seen)
        return seen
    finally:
        await pool.close()
        with contextlib.suppress(Exception):
            await nc.close()


async def test_a_crash_between_the_decision_commit_and_the_ack_decides_nothing_twice(
        own_api: Client, own_settings: Settings, own_store: EventStore) -> None:
    tenant = Tenant(own_settings, own_store)
    with Receiver() as receiver:
        webhook = await create_webhook(own_api, tenant, receiver.url("/once"))
        await open_issue(own_api, tenant)
        head = await asyncio.to_thread(own_store.head)

        seen = await decide_and_crash_before_ack(own_settings, head)
        decided = delivery_rows(own_settings, webhook["id"])
        decisions = [(position, event) for position, event in
                     (codec.from_public(msg.data) for msg in seen)]
        pool = create_pool(own_settings, min_size=1, max_size=1, name="replay")
        await pool.open()
        try:  # the same events decided again, past any checkpoint: the unique key keeps one row
            async with writer_transaction(pool) as conn:
                await DISPATCH.project(conn, decisions)
        finally:
            await pool.close()
        replayed = delivery_rows(own_settings, webhook["id"])

        with DeliveryWorker(own_settings, Clock()):  # a new process: resumes after the committed checkpoint
            receiver.wait_for("/once")
            after = await eventually(lambda: _settled(own_settings, webhook["id"]))

    assert len(decided) == 1 and decided[0][2] == "pending"
    assert replayed == decided
    assert len(receiver.received["/once"]) == 1
    assert [(row[0], row[1]) for row in after] == [(decided[0][0], decided[0][1])] and after[0][2] == "succeeded"


async def _settled(settings: Settings, endpoint_id: str) -> list[tuple[Any, ...]] | None:
    rows = delivery_rows(settings, endpoint_id)
    return rows if rows and all(row[2] != "pending" for row in rows) else None
