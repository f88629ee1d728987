"""A folding worker (detector, recommender, prediction worker) takes its events from the event store, never from the
messages: an event the stream never announced is still folded, and a message of another store folds nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import msgspec
import nats
import pytest
from nats.js import JetStreamContext

from adapters.event_store import EventStore
from adapters.nats import POSITION_HEADER, STORE_HEADER, ensure_stream
from adapters.settings import Settings
from tests.builders import opened
from workers import folding
from workers.folding import FoldingWorker

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
DEADLINE_S = 30.0


class Recorder(FoldingWorker[object]):
    """Folds issue events into a list; decides nothing."""

    categories = frozenset({"issue"})

    def __init__(self, settings: Settings, store: EventStore, js: JetStreamContext) -> None:
        super().__init__(settings, store, js)
        self.durable = f"fold-test-{uuid.uuid4().hex[:8]}"
        self.seen: list[uuid.UUID] = []
        self.keys: list[tuple[uuid.UUID, int]] = []
        self.caught_up = asyncio.Event()

    async def catch_up(self) -> None:
        await super().catch_up()
        self.caught_up.set()

    async def observe_history(self, events: list[tuple[int, object]]) -> Sequence[object]:
        return await self.observe([event for _, event in events])

    async def observe(self, events: list[object]) -> Sequence[object]:
        self.seen += [event.originator_id for event in events]  # type: ignore[attr-defined]
        self.keys += [(event.originator_id, event.originator_version) for event in events]  # type: ignore[attr-defined]
        return []

    async def apply(self, decisions: Sequence[object]) -> None:
        pass


@pytest.fixture
async def quiet(settings: Settings) -> AsyncIterator[Settings]:
    """The test's store on a stream of its own that no relay publishes to: whatever reaches it, the test sent."""
    own = msgspec.structs.replace(settings, nats_stream=f"FOLD_{uuid.uuid4().hex[:8].upper()}",
                                  subject_prefix=f"fold{uuid.uuid4().hex[:8]}")
    yield own
    nc = await nats.connect(own.nats_url)
    try:
        await nc.jetstream().delete_stream(own.nats_stream)
    finally:
        await nc.close()


async def until(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen"
        await asyncio.sleep(0.05)


async def test_events_the_stream_never_announced_are_folded_and_foreign_messages_fold_nothing(
        quiet: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folding, "IDLE_READ_S", 0.3)
    nc = await nats.connect(quiet.nats_url)
    store = EventStore(quiet, pool_size=1)
    stopping = asyncio.Event()
    try:
        js = nc.jetstream()
        await ensure_stream(js, quiet)
        worker = Recorder(quiet, store, js)
        running = asyncio.create_task(worker.run(stopping))
        await asyncio.wait_for(worker.caught_up.wait(), DEADLINE_S)

        # Stored, never published (a stream that lost them): the idle read finds them.
        silent = [uuid.uuid4() for _ in range(3)]
        await asyncio.to_thread(store.append, [opened(issue_id) for issue_id in silent])
        await until(lambda: set(silent) <= set(worker.seen), "folding events nobody announced")

        # Another store's message announcing a far position, with a payload of its own: nothing is folded from it.
        before = list(worker.seen)
        foreign = opened(uuid.uuid4())
        await js.publish(f"{quiet.subject_prefix}.{foreign.workspace_id}.issue.IssueOpened", b'{"not": "ours"}',
                         headers={STORE_HEADER: "another-store", POSITION_HEADER: str(store.head() + 100)})
        announced = uuid.uuid4()
        await asyncio.to_thread(store.append, [opened(announced)])
        await until(lambda: announced in worker.seen, "folding the next stored event")
        assert worker.seen == [*before, announced], "folded something that is not in this store"
        assert len(worker.keys) == len(set(worker.keys)), "folded an event twice"
    finally:
        stopping.set()
        await asyncio.wait_for(running, 10)
        store.close()
        await nc.close()
