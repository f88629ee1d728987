"""A message the projection keeps failing on is parked with its error; the rest flows on; retry re-applies it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg
import pytest

from adapters.codec import AnyEvent
from adapters.postgres import connect
from adapters.settings import Settings
from commands.issues import OpenIssue, issue_id_of
from commands.runner import Result
from domain.issues.events import IssueOpened
from projections import dead_letters
from projections.dead_letters import Unapplied
from projections.issues import projector as issues_projector
from projections.registry import PROJECTIONS
from projections.status import pipeline_status
from tests.workers.pipeline import caller, isolated, issue_commands, read_model, running, wait_for_projection
from workers.retry import retry_parked

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


async def refuse_poison(conn: psycopg.AsyncConnection[Any], batch: Sequence[tuple[int, AnyEvent]]) -> None:
    if any(isinstance(event, IssueOpened) and event.title == "poison" for _, event in batch):
        raise RuntimeError("cannot project this event")
    await issues_projector.project(conn, batch)


async def poisoned_history(s: Settings, monkeypatch: pytest.MonkeyPatch) -> tuple[Result, Result, Result]:
    """Three opened issues, the middle one refused by the `issues` projection (until the patch is undone)."""
    monkeypatch.setitem(PROJECTIONS, "issues", dataclasses.replace(PROJECTIONS["issues"], project=refuse_poison))
    with issue_commands(s) as (_, commands):
        before = await commands.open_issue(OpenIssue(title="fine before"), caller())
        poison = await commands.open_issue(OpenIssue(title="poison"), caller())
        after = await commands.open_issue(OpenIssue(title="fine after"), caller())
    return before, poison, after


async def test_a_poison_event_is_parked_after_n_attempts_and_later_events_still_project(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with isolated(msgspec.structs.replace(settings, projector_max_deliveries=3)) as s:
        before, poison, after = await poisoned_history(s, monkeypatch)

        async with running(s):
            await wait_for_projection(s, after.position)

        views = read_model(s)[0]
        assert set(views) == {issue_id_of(before), issue_id_of(after)}
        conn = await connect(s, autocommit=True)
        async with conn:
            cur = await conn.execute("SELECT position, error, deliveries FROM dead_letters")
            parked = await cur.fetchall()
            status = await pipeline_status(conn)
        assert [(row["position"], row["deliveries"]) for row in parked] == [(poison.position, 3)]
        assert "cannot project this event" in str(parked[0]["error"])
        assert status.projections[0].parked == 1

        monkeypatch.setitem(PROJECTIONS, "issues", dataclasses.replace(PROJECTIONS["issues"],
                                                                        project=issues_projector.project))
        report, still_parked = await asyncio.to_thread(retry_parked, s, "issues")

        assert (report.splitlines(), still_parked) == (
            [f"position {poison.position}: applied", "retried 1 parked messages of issues: 1 applied, 0 still parked"],
            0)
        assert issue_id_of(poison) in read_model(s)[0]


async def test_hosted_together_a_poison_event_parks_for_the_read_model_that_refuses_it_only(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with isolated(msgspec.structs.replace(settings, projector_max_deliveries=2)) as s:
        before, poison, after = await poisoned_history(s, monkeypatch)

        async with running(s, projections=("issues", "audit")):
            await wait_for_projection(s, after.position)
            await wait_for_projection(s, after.position, name="audit")

        assert set(read_model(s)[0]) == {issue_id_of(before), issue_id_of(after)}
        conn = await connect(s, autocommit=True)
        async with conn:
            cur = await conn.execute("SELECT projection, position FROM dead_letters")
            parked = await cur.fetchall()
            cur = await conn.execute("SELECT count(*) AS n FROM audit_log")
            audited = await cur.fetchone()
        assert [(row["projection"], row["position"]) for row in parked] == [("issues", poison.position)]
        assert audited is not None and audited["n"] == 3


async def test_the_webhook_delivery_decisions_parked_messages_can_be_retried(settings: Settings) -> None:
    """`causeloop projections retry webhook_dispatch`: the delivery worker's fold is retried like a read model."""
    with isolated(settings) as s:
        with issue_commands(s) as (_, commands):
            opened = await commands.open_issue(OpenIssue(title="a delivery decision that failed once"), caller())
        conn = await connect(s, autocommit=True)
        async with conn, conn.transaction():
            await dead_letters.park(conn, "webhook_dispatch", Unapplied(
                position=opened.position, payload=b"{}", error="RuntimeError('receiver table locked')"))

        report, still_parked = await asyncio.to_thread(retry_parked, s, "webhook_dispatch")

        assert (report.splitlines(), still_parked) == (
            [f"position {opened.position}: applied",
             "retried 1 parked messages of webhook_dispatch: 1 applied, 0 still parked"], 0)
