"""The command runner and the commands that decide through it, on the library's in-memory store: no services.

The same runner, committer and commands run on Postgres in the e2e tests; here they run in milliseconds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from adapters.event_store import EventStore
from adapters.idempotency import Claim, KeyScope
from commands.caller import Caller
from commands.errors import NotFound, StaleVersion
from commands.group_commit import ConcurrencyConflict, GroupCommitter
from commands.issues import BulkOp, IssueCommands, OpenIssue, comment_id_of, issue_events, issue_id_of
from commands.runner import MAX_ATTEMPTS, CommandRunner, Context, Decision
from domain.errors import InvalidTransition
from domain.issues.events import IssueClosed, IssueEvent, IssueOpened, Status
from domain.issues.issue import IssueEdit
from tests.builders import ALICE, T1, WS

IDS = [uuid.UUID(int=(0x0194_9A3C_0000_7000_8000 << 48) + n) for n in range(1, 100)]


@pytest.fixture
def runner() -> Iterator[CommandRunner]:
    store = EventStore(None)
    committer = GroupCommitter(store)
    ids = iter(IDS)
    yield CommandRunner(store, committer, clock=lambda: T1, ids=lambda: next(ids))
    committer.close()
    store.close()


def caller(claim: Claim | None = None) -> Caller:
    return Caller(workspace_id=WS, actor=ALICE, claim=claim)


async def test_a_command_decides_appends_and_answers_one_result(runner: CommandRunner) -> None:
    result = await IssueCommands(runner).open_issue(OpenIssue(title="Disk full"), caller())

    assert (result.stream_id, result.version, result.created) == (IDS[0], 1, True)
    assert result.position > 0 and [type(e) for e in result.stream] == [IssueOpened]
    assert result.stream[0].occurred_at == T1
    assert await runner.load(IDS[0], IssueEvent) == list(result.stream)


async def test_the_same_source_and_external_id_edits_the_first_issue(runner: CommandRunner) -> None:
    commands = IssueCommands(runner)
    first = await commands.open_issue(OpenIssue(title="a", source="jira", external_id="OPS-1"), caller())
    second = await commands.open_issue(OpenIssue(title="b", source="jira", external_id="OPS-1"), caller())

    assert second.stream_id == first.stream_id and (second.version, second.created) == (2, False)
    assert [e.title for e in issue_events(second) if isinstance(e, IssueOpened)] == ["a"]


async def test_a_stale_expected_version_is_refused_before_anything_is_appended(runner: CommandRunner) -> None:
    commands = IssueCommands(runner)
    opened = await commands.open_issue(OpenIssue(title="a"), caller())

    with pytest.raises(StaleVersion) as refused:
        await commands.close_issue(issue_id_of(opened), caller(), expected_version=7)

    assert (refused.value.expected, refused.value.actual) == (7, 1)
    assert len(await runner.load(opened.stream_id, IssueEvent)) == 1


async def test_a_rule_violation_and_an_unknown_or_foreign_issue_are_the_commands_answers(
        runner: CommandRunner) -> None:
    commands = IssueCommands(runner)
    closed = await commands.close_issue(issue_id_of(await commands.open_issue(OpenIssue(title="a"), caller())),
                                        caller())

    with pytest.raises(InvalidTransition):
        await commands.edit_issue(issue_id_of(closed), IssueEdit(status=Status.OPEN), caller())
    with pytest.raises(NotFound):
        await commands.close_issue("iss_01KV1PX3NR96XJRGD48NNHH431", caller())
    with pytest.raises(NotFound):
        await commands.close_issue(issue_id_of(closed), Caller(workspace_id="ws_01KV1PX3NR96XJRGD48NNHH431",
                                                                actor=ALICE))


async def test_a_comment_is_found_in_the_result(runner: CommandRunner) -> None:
    commands = IssueCommands(runner)
    opened = await commands.open_issue(OpenIssue(title="a"), caller())

    commented = await commands.comment_on_issue(issue_id_of(opened), "seen again", caller())

    assert str(comment_id_of(commented)).startswith("cmt_") and commented.version == 2


async def test_bulk_answers_each_id_on_its_own(runner: CommandRunner) -> None:
    commands = IssueCommands(runner)
    opened = [await commands.open_issue(OpenIssue(title=f"n{i}"), caller()) for i in range(3)]
    ids = [issue_id_of(result) for result in opened] + ["iss_01KV1PX3NR96XJRGD48NNHH431"]

    outcomes = await commands.bulk(ids, BulkOp.SET_STATUS, "closed", caller())

    assert [o.result is not None for o in outcomes] == [True, True, True, False]
    assert isinstance(outcomes[-1].error, NotFound)
    assert all(isinstance(o.result.stream[-1], IssueClosed) for o in outcomes if o.result)


async def test_a_conflict_decides_again_on_a_fresh_load_then_gives_up(runner: CommandRunner) -> None:
    stream_id = IDS[50]
    attempts: list[int] = []

    async def always_behind(context: Context) -> Decision:
        history = await context.load(stream_id, IssueEvent)
        attempts.append(len(history))
        rival = IssueOpened(originator_id=stream_id, originator_version=len(history) + 1, occurred_at=T1,
                            workspace_id=WS, actor=ALICE, title="rival")
        await asyncio.to_thread(runner.store.append, [rival])  # another writer gets there first, every time
        mine = IssueOpened(originator_id=stream_id, originator_version=len(history) + 1, occurred_at=T1,
                           workspace_id=WS, actor=ALICE, title="mine")
        return Decision(stream_id, history, [mine])

    with pytest.raises(ConcurrencyConflict):
        await runner.run(caller(), always_behind)

    assert attempts == list(range(MAX_ATTEMPTS))


async def test_a_claim_step_that_already_committed_answers_its_result_without_deciding(
        runner: CommandRunner) -> None:
    opened = await IssueCommands(runner).open_issue(OpenIssue(title="a"), caller())
    committed = {"0": {"stream_id": str(opened.stream_id), "version": 1, "position": opened.position,
                       "created": True, "revealed": None}}
    claim = Claim(KeyScope(WS, ALICE.id, "k", "/v1/issues"), "c2", committed)

    async def never(context: Context) -> Decision:
        raise AssertionError("a committed step is not decided again")

    replayed = await runner.run(caller(claim), never)

    assert replayed == opened
    assert claim.next_step() == (1, None)


def test_the_clock_and_ids_come_from_the_runner(runner: CommandRunner) -> None:
    assert runner.clock() == T1 and isinstance(runner.clock(), datetime)
    assert runner.new_uuid() == IDS[0]
