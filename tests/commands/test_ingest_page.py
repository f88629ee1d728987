"""`IngestionCommands.ingest_page`: a connector's sync page is one ingestion, and a page that changes nothing
appends nothing (not even its job)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commands.ingestion import IngestionCommands
from commands.issues import IssueCommands, source_stream
from domain.connectors.payloads import polled_record
from domain.ids import UserId, render
from domain.ingestion.events import IngestionJobCompleted
from domain.ingestion.normalize import CanonicalRecord
from domain.issues.events import IssueDetailsEdited, IssueOpened
from domain.issues.issue import IssueEdit
from tests.commands.test_command_classes import World

CONNECTOR = "con_01KV1PX3NR96XJRGD48NNHH431"
CONFIG = {"owner": "acme", "repo": "web"}


@pytest.fixture
def world() -> Iterator[World]:
    built = World()
    yield built
    built.close()


def page(*items: dict[str, object]) -> list[tuple[int, CanonicalRecord]]:
    return [(index, polled_record("github", {"title": "Checkout fails", **item}, CONFIG))
            for index, item in enumerate(items)]


async def push(world: World, records: list[tuple[int, CanonicalRecord]]) -> tuple[list[str], int]:
    job, position = await IngestionCommands(world.runner).ingest_page(
        world.owner, received=len(records), records=records, rejected=[], source="github", connector_id=CONNECTOR)
    assert job.connector_id == CONNECTOR
    return [issue.outcome.value for issue in job.issues] + ["failed"] * len(job.rejected), position


async def test_new_changed_unchanged_and_repeated_items_each_get_their_outcome_in_one_append(world: World) -> None:
    first, position = await push(world, page({"number": 1}, {"number": 2}, {"number": 3}))
    head = world.store.head()
    second, _ = await push(world, page({"number": 1}, {"number": 2, "title": "Checkout fails on Safari"},
                                       {"number": 4}, {"number": 4, "labels": [{"name": "p1"}]}))

    assert first == ["created"] * 3 and position == head
    assert second == ["unchanged", "updated", "created", "updated"]
    appended = [event for _, event in world.store.read(head, 100)]
    assert [type(e) for e in appended] == [IssueDetailsEdited, IssueOpened, IssueDetailsEdited, IngestionJobCompleted]
    repeated = world.store.load(source_stream(world.workspace_id, "github", "acme/web#4"))
    assert [e.originator_version for e in repeated] == [1, 2]


async def test_a_page_that_changes_nothing_appends_nothing(world: World) -> None:
    await push(world, page({"number": 5}))
    head = world.store.head()
    outcomes, position = await push(world, page({"number": 5}))
    assert outcomes == ["unchanged"] and position == 0 and world.store.head() == head


async def test_a_closed_issue_fails_alone_and_what_people_set_stays(world: World) -> None:
    await push(world, page({"number": 6}, {"number": 7}))
    issues = IssueCommands(world.runner)
    closed = render("iss", source_stream(world.workspace_id, "github", "acme/web#6"))
    kept = source_stream(world.workspace_id, "github", "acme/web#7")
    await issues.close_issue(closed, world.owner)
    await issues.edit_issue(render("iss", kept), IssueEdit(team="payments", assignee_id=UserId(world.owner.actor.id)),
                            world.owner)

    outcomes, _ = await push(world, page({"number": 6, "title": "changed"}, {"number": 7}, {"number": 8}))

    assert outcomes == ["unchanged", "created", "failed"]  # issues in page order, then the refused
    assert len(world.store.load(kept)) == 3  # opened, edited (team), assigned: the re-sent item changed nothing
