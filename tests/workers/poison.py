"""Events a read model cannot store, written straight into the event store (as an older writer, a restored backup
or a bug could have): the API's validation never sees them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import msgspec

from adapters.event_store import EventStore
from adapters.postgres import connect
from adapters.settings import Settings
from domain.events import DomainEvent
from domain.issues.events import IssueOpened
from tests.builders import opened

NUL_TITLE = "bad \x00 title"
"""Postgres text cannot hold NUL: the row is refused when the statement is bound."""
FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(-timedelta(hours=23, minutes=59)))
"""A valid aware datetime whose UTC form is past year 9999: converting it raises OverflowError."""


def issue_opened(title: str = "fine", occurred_at: datetime | None = None) -> IssueOpened:
    event = msgspec.structs.replace(opened(uuid.uuid4()), title=title)
    return event if occurred_at is None else msgspec.structs.replace(event, occurred_at=occurred_at)


def append_one_by_one(settings: Settings, events: Sequence[DomainEvent]) -> list[int]:
    """One transaction per event, so each reaches a projector as its own message; returns their positions."""
    store = EventStore(settings, pool_size=1)
    try:
        return [store.append([event])[0] for event in events]
    finally:
        store.close()


async def parked_positions(settings: Settings, projection: str) -> list[int]:
    """Positions still parked (not retried) for `projection`, in order."""
    conn = await connect(settings, autocommit=True)
    async with conn:
        cur = await conn.execute("SELECT position FROM dead_letters WHERE projection = %s AND retried_at IS NULL"
                                 " ORDER BY position", (projection,))
        return [int(row["position"]) for row in await cur.fetchall()]
