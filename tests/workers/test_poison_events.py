"""Events a read model cannot store (a NUL in a text field: Postgres text cannot hold it), written straight into
the event store as an older or foreign writer could have: each is parked on its own and never disturbs the next."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from adapters.event_store import EventStore
from adapters.postgres import connect
from adapters.settings import Settings
from domain.ids import render
from tests.builders import opened
from tests.workers.pipeline import isolated, read_model, running, wait_for_projection

pytestmark = [pytest.mark.postgres, pytest.mark.nats]

POISON = "bad \x00 title"


def append_one_by_one(settings: Settings, titles: list[str]) -> list[tuple[int, str]]:
    """One transaction per event, so each reaches the projector as its own message: (position, issue id)."""
    store = EventStore(settings, pool_size=1)
    try:
        appended = []
        for title in titles:
            event = msgspec.structs.replace(opened(uuid.uuid4()), title=title)
            (position,) = store.append([event])
            appended.append((position, render("iss", event.originator_id)))
        return appended
    finally:
        store.close()


async def parked_positions(settings: Settings, projection: str) -> list[int]:
    conn = await connect(settings, autocommit=True)
    async with conn:
        cur = await conn.execute("SELECT position FROM dead_letters WHERE projection = %s AND retried_at IS NULL"
                                 " ORDER BY position", (projection,))
        return [int(row["position"]) for row in await cur.fetchall()]


async def test_every_good_event_projects_and_only_the_bad_ones_park(settings: Settings) -> None:
    with isolated(msgspec.structs.replace(settings, projector_max_deliveries=2)) as s:
        # Poison runs long enough (each poison is tried twice) to cross psycopg's prepare threshold (5 executions
        # of a statement on a connection) inside failed attempts, interleaved with good events.
        titles = [POISON if i % 9 < 4 or i % 9 == 6 else f"fine {i}" for i in range(1, 37)]
        appended = await asyncio.to_thread(append_one_by_one, s, titles)
        async with running(s):
            await wait_for_projection(s, appended[-1][0])

        views = read_model(s)[0]
        good = {issue_id for (_, issue_id), title in zip(appended, titles, strict=True) if title != POISON}
        bad = [position for (position, _), title in zip(appended, titles, strict=True) if title == POISON]
        assert set(views) == good
        assert await parked_positions(s, "issues") == bad
