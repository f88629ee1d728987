"""F12: a JetStream stream that holds messages which are not this event store's events (another store's, ones
published before store ids, ones beyond the store's head). The relay refuses to publish into it and says what
resolves it; projectors never apply such a message: they park and report it, and apply the store's own events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import nats
import psycopg
import pytest

from adapters import codec
from adapters.event_store import EVENTS_TABLE, EventStore
from adapters.nats import STORE_HEADER, ensure_stream
from adapters.postgres import connect
from adapters.settings import Settings
from cli.main import main
from domain.events import DomainEvent
from domain.ids import render
from projections.status import pipeline_status, prometheus_text
from tests.workers.pipeline import (
    assert_read_model_matches_the_event_store,
    isolated,
    publish_raw,
    read_model,
    running,
    store_of,
    stored_positions,
    wait_for_projection,
    write_history,
)
from tests.workers.poison import append_one_by_one, issue_opened
from workers import relay
from workers.operations import projections_status, relay_status

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


async def publish(settings: Settings, event: DomainEvent, position: int, store: str | None) -> None:
    """One message as a relay of store `store` (None: a relay from before store ids) would have published it."""
    nc = await nats.connect(settings.nats_url)
    try:
        headers = {"Nats-Msg-Id": uuid.uuid4().hex, "Causeloop-Position": str(position)}
        await nc.jetstream().publish(codec.subject_for(settings.subject_prefix, event),
                                     codec.encode_public(event, position),
                                     headers=headers if store is None else {**headers, STORE_HEADER: store})
    finally:
        await nc.close()


def cli(settings: Settings, tmp_path: Path, *args: str) -> int:
    return main(list(args), {"DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema,
                             "NATS_URL": settings.nats_url, "NATS_STREAM": settings.nats_stream,
                             "SUBJECT_PREFIX": settings.subject_prefix, "DATA_DIR": str(tmp_path)})


@contextlib.contextmanager
def relay_refusals() -> Iterator[asyncio.Queue[str]]:
    """Each refusal the relay logs, as it logs it (the relay runs on the test's event loop)."""
    refusals: asyncio.Queue[str] = asyncio.Queue()

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("relay refuses to publish: "):
                refusals.put_nowait(record.getMessage().removeprefix("relay refuses to publish: "))

    handler = Catch()
    logging.getLogger(relay.__name__).addHandler(handler)
    try:
        yield refusals
    finally:
        logging.getLogger(relay.__name__).removeHandler(handler)


async def stream_messages(settings: Settings) -> int:
    nc = await nats.connect(settings.nats_url)
    try:
        return int((await nc.jetstream().stream_info(settings.nats_stream)).state.messages)
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def published(settings: Settings) -> AsyncIterator[asyncio.Queue[int]]:
    """The position of each message published on the stream's subjects from now on."""
    positions: asyncio.Queue[int] = asyncio.Queue()
    nc = await nats.connect(settings.nats_url)

    async def seen(msg: nats.aio.msg.Msg) -> None:
        positions.put_nowait(int((msg.headers or {}).get("Causeloop-Position", "0")))

    await nc.subscribe(f"{settings.subject_prefix}.>", cb=seen)
    try:
        yield positions
    finally:
        await nc.close()


def restore_older_backup(settings: Settings, keep: int) -> None:
    """The event store as a backup taken at position `keep` would bring it back: later events gone, its position
    sequence and the relay's checkpoint where they were then."""
    with psycopg.connect(settings.database_url, autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        conn.execute(f"DELETE FROM {EVENTS_TABLE} WHERE notification_id > %s", (keep,))
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{EVENTS_TABLE}', 'notification_id'), %s)", (keep,))
        conn.execute("UPDATE relay_checkpoint SET position = %s", (keep,))


def raw_log(settings: Settings) -> list[tuple[int, bytes]]:
    store = EventStore(settings, pool_size=1)
    try:
        return store.read_raw(0, 10**9)
    finally:
        store.close()


async def test_a_projector_parks_what_is_not_this_stores_and_applies_its_own_events(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with isolated(settings) as s:
        ours = [issue_opened(f"ours {i}") for i in range(4)]
        strangers = [issue_opened(f"another store's {i}") for i in range(3)]
        async with running(s):
            first = await asyncio.to_thread(append_one_by_one, s, ours[:2])
            await wait_for_projection(s, first[-1])
            # Far ahead of this store's positions: applied, they would move the checkpoint past its next events.
            await publish(s, strangers[0], 10_000, store=str(uuid.uuid4()))
            await publish(s, strangers[1], 10_001, store=None)
            await publish(s, strangers[2], 10_002, store=store_of(s))  # stamped as ours, but never stored here
            later = await asyncio.to_thread(append_one_by_one, s, ours[2:])
            await wait_for_projection(s, later[-1])

        assert set(read_model(s)[0]) == {render("iss", e.originator_id) for e in ours}
        conn = await connect(s, autocommit=True)
        async with conn:
            status = await pipeline_status(conn)
        issues = next(p for p in status.projections if p.name == "issues")
        assert (issues.position, issues.parked, issues.foreign) == (later[-1], 3, 3)
        assert 'causeloop_projection_foreign_messages{projection="issues"} 3' in prometheus_text(status)
        assert "3 message(s) parked as foreign" in await asyncio.to_thread(projections_status, s)

        assert await asyncio.to_thread(cli, s, tmp_path, "projections", "retry", "issues") == 1
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 4 and all(": not retried (" in line for line in lines[:3])
        assert any("a message without a store id" in line for line in lines)
        assert any("beyond this event store's head" in line for line in lines)
        assert lines[-1] == "retried 3 parked messages of issues: 0 applied, 3 still parked"

        assert await asyncio.to_thread(cli, s, tmp_path, "projections", "retry", "issues", "--discard-foreign") == 0
        assert capsys.readouterr().out.splitlines()[-1] == \
            "retried 3 parked messages of issues: 0 applied, 0 still parked, 3 foreign discarded"
        assert "parked as foreign" not in await asyncio.to_thread(projections_status, s)


async def test_a_relay_refuses_a_stream_that_holds_another_stores_messages(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with isolated(settings) as first, isolated(settings) as own:
        head = await asyncio.to_thread(write_history, first, 3)
        async with running(first):
            await wait_for_projection(first, head)
        before = await stream_messages(first)
        # A second deployment pointed at the first one's stream (say, both left at the default NATS_STREAM).
        second = msgspec.structs.replace(own, nats_stream=first.nats_stream, subject_prefix=first.subject_prefix)
        second_head = await asyncio.to_thread(write_history, second, 2)

        with relay_refusals() as refusals:
            async with running(second, projector=False):
                refusal = await asyncio.wait_for(refusals.get(), 30)

        assert f"holds messages of event store {store_of(first)}" in refusal
        assert f"this deployment's event store is {store_of(second)}" in refusal
        assert "set NATS_STREAM and SUBJECT_PREFIX to new names" in refusal
        assert "causeloop relay reset-stream" in refusal
        assert await stream_messages(first) == before  # nothing published
        assert f"relay REFUSES to publish: {refusal}" in await asyncio.to_thread(relay_status, second)
        assert await asyncio.to_thread(cli, second, tmp_path, "relay", "reset-stream") == 1
        assert "another deployment's stream" in capsys.readouterr().err
        assert await stream_messages(first) == before  # reset-stream does not delete another store's events

        # What the refusal says resolves it: a stream (and subjects) of its own.
        apart = msgspec.structs.replace(second, nats_stream=own.nats_stream, subject_prefix=own.subject_prefix)
        async with running(apart, projections=("identity", "issues")):
            await wait_for_projection(apart, second_head)
            await wait_for_projection(apart, second_head, name="identity")
        assert_read_model_matches_the_event_store(apart)
        assert "REFUSES" not in await asyncio.to_thread(relay_status, apart)


@pytest.mark.parametrize("written_since", [False, True], ids=["lost-tail", "new-events-since"])
async def test_a_relay_refuses_a_stream_ahead_of_a_store_restored_from_an_older_backup(
        settings: Settings, written_since: bool) -> None:
    with isolated(settings) as s:
        head = await asyncio.to_thread(write_history, s, 6)
        async with running(s, projector=False), published(s) as positions:
            while await positions.get() != head:
                pass
        kept = stored_positions(s)[-8]
        await asyncio.to_thread(restore_older_backup, s, kept)
        if written_since:  # the restored database took writes before its relay came back: same positions, new events
            await asyncio.to_thread(append_one_by_one, s, [issue_opened(f"new {i}") for i in range(head - kept + 2)])
        now = stored_positions(s)[-1]
        before = await stream_messages(s)

        with relay_refusals() as refusals:
            async with running(s, projector=False):
                refusal = await asyncio.wait_for(refusals.get(), 30)

        what = "holds another event there" if written_since else "does not hold it"
        assert f"ends with this store's event at position {head}" in refusal
        assert f"the event store {what} (its head is {now})" in refusal
        assert "restored from an older backup" in refusal and "causeloop relay reset-stream" in refusal
        assert await stream_messages(s) == before


@pytest.mark.parametrize("projecting", [False, True], ids=["projector-stopped", "projector-running"])
async def test_reset_stream_republishes_the_store_and_projectors_resume_on_the_new_stream(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        projecting: bool) -> None:
    monkeypatch.setattr(relay, "REFUSED_RETRY_S", 0.1)
    with isolated(settings) as s, relay_refusals() as refusals:
        head = await asyncio.to_thread(write_history, s, 4)
        # Copies of every event ahead of the relay's messages: the projector's stream sequence ends far past the
        # store's event count, so the new stream will number other events there.
        nc = await nats.connect(s.nats_url)
        await ensure_stream(nc.jetstream(), s)
        await publish_raw(s, copies=2)
        await relay.publish(nc.jetstream(), s, store_of(s), await asyncio.to_thread(raw_log, s))
        await nc.close()
        async with running(s):
            await wait_for_projection(s, head)
        assert refusals.empty()
        await publish(s, issue_opened("from a relay before store ids"), head, store=None)

        async with running(s, projector=projecting), published(s) as positions:
            refusal = await asyncio.wait_for(refusals.get(), 30)
            assert "messages without a store id" in refusal
            assert await asyncio.to_thread(cli, s, tmp_path, "relay", "reset-stream") == 0
            later = await asyncio.to_thread(append_one_by_one, s, [issue_opened(f"after {i}") for i in range(3 * head)])
            while await positions.get() != later[-1]:  # the relay republished everything, then the new events
                pass
            if projecting:
                await wait_for_projection(s, later[-1])
        assert refusals.empty()

        assert f"republishes this store's events (positions 1 to {head}" in capsys.readouterr().out
        assert await stream_messages(s) == len(stored_positions(s))
        async with running(s, relay=False):
            await wait_for_projection(s, later[-1])
        assert_read_model_matches_the_event_store(s)
        assert "REFUSES" not in await asyncio.to_thread(relay_status, s)
