"""`IssueCommands.open_issues`: a page of re-submissions decided like `open_issue`, appended in one transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commands.issues import IssueCommands, Opened, OpenIssue, source_stream
from domain.ids import UserId, render
from domain.issues.events import IssueDetailsEdited, IssueOpened, Severity
from domain.issues.issue import IssueEdit
from tests.commands.test_command_classes import World


@pytest.fixture
def world() -> Iterator[World]:
    built = World()
    yield built
    built.close()


def cmd(external_id: str, title: str = "Checkout fails", **fields: object) -> OpenIssue:
    return OpenIssue(title=title, source="github", external_id=external_id, **fields)  # type: ignore[arg-type]


async def test_new_changed_unchanged_and_repeated_items_each_get_their_outcome(world: World) -> None:
    issues = IssueCommands(world.runner)
    first, position = await issues.open_issues([cmd("a#1"), cmd("a#2"), cmd("a#3")], world.owner)
    head = world.store.head()

    second, _ = await issues.open_issues([cmd("a#1"), cmd("a#2", title="Checkout fails on Safari"), cmd("a#4"),
                                       cmd("a#4", severity=Severity.HIGH)], world.owner)

    assert first == [Opened.CREATED] * 3 and position == head
    assert second == [Opened.UNCHANGED, Opened.UPDATED, Opened.CREATED, Opened.UPDATED]
    appended = [event for _, event in world.store.read(head, 100)]
    assert [type(e) for e in appended] == [IssueDetailsEdited, IssueOpened, IssueDetailsEdited]
    repeated = world.store.load(source_stream(world.workspace_id, "github", "a#4"))
    assert [e.originator_version for e in repeated] == [1, 2]


async def test_a_closed_issue_fails_alone_and_the_rest_are_stored(world: World) -> None:
    issues = IssueCommands(world.runner)
    opened = await issues.open_issue(cmd("b#1"), world.owner)
    await issues.close_issue(render("iss", opened.stream_id), world.owner)
    outcomes, _ = await issues.open_issues([cmd("b#1", title="changed"), cmd("b#2")], world.owner)
    assert outcomes == [Opened.FAILED, Opened.CREATED]


async def test_what_a_resent_item_leaves_out_stays_as_people_set_it(world: World) -> None:
    issues = IssueCommands(world.runner)
    opened = await issues.open_issue(cmd("c#1", body="trace"), world.owner)
    public = render("iss", opened.stream_id)
    await issues.edit_issue(public, IssueEdit(team="payments", assignee_id=UserId(world.owner.actor.id)),
                            world.owner)
    outcomes, _ = await issues.open_issues([cmd("c#1")], world.owner)
    events = world.store.load(opened.stream_id)
    assert outcomes == [Opened.UNCHANGED]
    assert len(events) == 3  # opened, edited (team), assigned: the re-sent item changed nothing
