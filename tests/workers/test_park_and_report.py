"""`causeloop projections rebuild` and `retry` with events the read model cannot apply: they park and report them
like the live projector does, and carry on with every other event."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from adapters.codec import AnyEvent
from adapters.settings import Settings
from cli.main import main
from domain.identity.user import register_user
from domain.ids import render
from domain.issues.events import IssueOpened
from projections.issues import projector as issues_projector
from projections.issues.view import fold
from projections.registry import PROJECTIONS
from tests.builders import meta
from tests.workers.pipeline import isolated, read_model, running, wait_for_projection
from tests.workers.poison import FAR_FUTURE, NUL_TITLE, append_one_by_one, issue_opened, parked_positions
from workers import operations

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


def issue_history() -> tuple[list[IssueOpened], set[int]]:
    """Good issues around two the `issues` read model cannot store; returns the events and the bad ones' indexes."""
    events = [issue_opened(f"fine {i}") for i in range(9)]
    events[2] = issue_opened(NUL_TITLE)
    events[6] = issue_opened("far future", occurred_at=FAR_FUTURE)
    return events, {2, 6}


def cli(settings: Settings, tmp_path: Path, *args: str) -> int:
    return main(list(args), {"DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema,
                             "DATA_DIR": str(tmp_path)})


async def test_rebuild_parks_what_it_cannot_apply_and_rebuilds_everything_else(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(operations, "PAGE", 2)  # several pages, so a bad one comes between good ones
    with isolated(msgspec.structs.replace(settings, projector_max_deliveries=1)) as s:
        events, bad = issue_history()
        positions = await asyncio.to_thread(append_one_by_one, s, events)
        async with running(s):
            await wait_for_projection(s, positions[-1])
        live = read_model(s)

        assert await asyncio.to_thread(cli, s, tmp_path, "projections", "rebuild", "issues") == 0

        out = capsys.readouterr().out
        assert "rebuilt issues: 9 events" in out and "parked 2 events" in out
        assert read_model(s) == live
        assert set(live[0]) == {render("iss", e.originator_id) for i, e in enumerate(events) if i not in bad}
        assert all(view == fold(None, [e]) for view, e in zip(live[0].values(), [e for i, e in enumerate(events)
                                                                                   if i not in bad], strict=True))
        assert await parked_positions(s, "issues") == [positions[i] for i in sorted(bad)]


async def test_rebuild_of_a_read_model_written_event_by_event_parks_too(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "PAGE", 2)
    with isolated(settings) as s:
        users = [register_user(user_id=uuid.uuid4(), email=f"u{i}@example.com", meta=meta(),
                               name=NUL_TITLE if i == 1 else f"user {i}") for i in range(4)]
        positions = await asyncio.to_thread(append_one_by_one, s, users)

        outcome = await asyncio.to_thread(operations.rebuild, s, "identity")

        assert "parked 1 event " in outcome
        assert await parked_positions(s, "identity") == [positions[1]]
        with psycopg.connect(s.database_url, options=f"-c search_path={s.database_schema}") as conn:
            names = [row[0] for row in conn.execute("SELECT name FROM users ORDER BY email")]
        assert names == ["user 0", "user 2", "user 3"]


async def refuse_fixable(conn: psycopg.AsyncConnection[Any], batch: Sequence[tuple[int, AnyEvent]]) -> None:
    if any(isinstance(event, IssueOpened) and event.title == "fixable" for _, event in batch):
        raise RuntimeError("a bug, fixed by the next deploy")
    await issues_projector.project(conn, batch)


async def test_retry_retries_every_parked_message_reports_each_and_fails_while_some_stay_parked(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with isolated(msgspec.structs.replace(settings, projector_max_deliveries=2)) as s:
        events = [issue_opened(NUL_TITLE), issue_opened("far", occurred_at=FAR_FUTURE), issue_opened("fixable"),
                  issue_opened("fine")]
        nul, far, fixable, fine = await asyncio.to_thread(append_one_by_one, s, events)
        monkeypatch.setitem(PROJECTIONS, "issues", dataclasses.replace(PROJECTIONS["issues"], project=refuse_fixable))
        async with running(s):
            await wait_for_projection(s, fine)
        assert await parked_positions(s, "issues") == [nul, far, fixable]
        monkeypatch.setitem(PROJECTIONS, "issues", dataclasses.replace(PROJECTIONS["issues"],
                                                                        project=issues_projector.project))

        assert await asyncio.to_thread(cli, s, tmp_path, "projections", "retry", "issues") == 1

        lines = capsys.readouterr().out.splitlines()
        assert any(f"position {nul}: still parked" in line and "CharacterNotInRepertoire" in line for line in lines)
        assert any(f"position {far}: still parked" in line and "OverflowError" in line for line in lines)
        assert f"position {fixable}: applied" in lines
        assert lines[-1] == "retried 3 parked messages of issues: 1 applied, 2 still parked"
        assert await parked_positions(s, "issues") == [nul, far]
        assert set(read_model(s)[0]) == {render("iss", events[i].originator_id) for i in (2, 3)}

        assert await asyncio.to_thread(cli, s, tmp_path, "projections", "retry", "issues") == 1  # no change: still 2
        assert capsys.readouterr().out.splitlines()[-1] == \
            "retried 2 parked messages of issues: 0 applied, 2 still parked"
