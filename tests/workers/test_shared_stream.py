"""F12: a JetStream stream that holds messages which are not this event store's events (another store's, ones
published before store ids, ones beyond the store's head). Projectors never apply them: they park and report
them, and apply the store's own events as usual."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import nats
import pytest

from adapters import codec
from adapters.nats import STORE_HEADER
from adapters.postgres import connect
from adapters.settings import Settings
from cli.main import main
from domain.events import DomainEvent
from domain.ids import render
from projections.status import pipeline_status, prometheus_text
from tests.workers.pipeline import isolated, read_model, running, store_of, wait_for_projection
from tests.workers.poison import append_one_by_one, issue_opened
from workers.operations import projections_status

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

        code = await asyncio.to_thread(main, ["projections", "retry", "issues"], {
            "DATABASE_URL": s.database_url, "DATABASE_SCHEMA": s.database_schema, "DATA_DIR": str(tmp_path)})
        lines = capsys.readouterr().out.splitlines()
        assert code == 1
        assert [line.split(": ", 2)[1] for line in lines[:-1]] == ["not retried"] * 3
        assert any("a message without a store id" in line for line in lines)
        assert any("beyond this event store's head" in line for line in lines)
        assert lines[-1] == "retried 3 parked messages of issues: 0 applied, 3 still parked"
