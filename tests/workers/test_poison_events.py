"""Events a read model cannot store, injected into the event store: each is parked on its own and never disturbs
the next one."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from adapters.settings import Settings
from domain.ids import render
from tests.workers.pipeline import isolated, read_model, running, wait_for_projection
from tests.workers.poison import NUL_TITLE, append_one_by_one, issue_opened, parked_positions

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


async def test_every_good_event_projects_and_only_the_bad_ones_park(settings: Settings) -> None:
    with isolated(msgspec.structs.replace(settings, projector_max_deliveries=2)) as s:
        # Poison runs long enough (each poison is tried twice) to cross psycopg's prepare threshold (5 executions
        # of a statement on a connection) inside failed attempts, interleaved with good events.
        events = [issue_opened(NUL_TITLE if i % 9 < 4 or i % 9 == 6 else f"fine {i}") for i in range(1, 37)]
        positions = await asyncio.to_thread(append_one_by_one, s, events)
        async with running(s):
            await wait_for_projection(s, positions[-1])

        good = {render("iss", e.originator_id) for e in events if e.title != NUL_TITLE}
        assert set(read_model(s)[0]) == good
        assert await parked_positions(s, "issues") == [p for p, e in zip(positions, events, strict=True)
                                                       if e.title == NUL_TITLE]
