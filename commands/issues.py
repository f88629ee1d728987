"""Issue commands: how each decides; loading, appending and retrying are the runner's (commands/runner.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import cast
from uuid import UUID

import msgspec

from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.errors import NotFound
from commands.group_commit import ConcurrencyConflict
from commands.runner import CommandRunner, Context, Decision, Result
from domain.errors import DomainError
from domain.events import Meta
from domain.ids import CommentId, IssueId, PatternId, UserId, parse, render
from domain.issues import issue as decide
from domain.issues.events import AnyIssueEvent, IssueCommented, IssueEvent, Metadata, Severity, Status
from domain.issues.issue import Issue, IssueEdit


class OpenIssue(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    body: str | None = None
    severity: Severity = Severity.MEDIUM
    source: str = "manual"
    external_id: str | None = None
    team: str | None = None
    assignee_id: UserId | None = None
    external_url: str | None = None
    metadata: Metadata | None = None
    source_created_at: datetime | None = None


class BulkOp(StrEnum):
    SET_STATUS = "set_status"
    ASSIGN = "assign"
    SET_TEAM = "set_team"
    LINK_PATTERN = "link_pattern"


class BulkOutcome(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    result: Result | None = None
    error: Exception | None = None


Rule = Callable[[Issue, Meta], Sequence[IssueEvent]]


def source_stream(workspace_id: str, source: str, external_id: str) -> UUID:
    """The one stream of the issue with this source + external_id in the workspace (the dedup key)."""
    return keyed_uuid(workspace_id, "issue-source", source, external_id)


def issue_id_of(result: Result) -> IssueId:
    return IssueId(render("iss", result.stream_id))


def issue_events(result: Result) -> list[AnyIssueEvent]:
    return cast(list[AnyIssueEvent], result.own(IssueEvent))


def comment_id_of(result: Result) -> CommentId:
    """The comment a `comment_on_issue` added: its stream's last event."""
    event = result.stream[-1]
    assert isinstance(event, IssueCommented)
    return event.comment_id


class IssueCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    async def open_issue(self, cmd: OpenIssue, caller: Caller) -> Result:
        """Same source + external_id updates the existing issue instead of opening a second one."""
        fields = msgspec.structs.asdict(cmd)

        async def deciding(context: Context) -> Decision:
            if cmd.external_id is None:
                stream_id = context.new_uuid()
                return Decision(stream_id, (), [decide.open_issue(issue_id=stream_id, meta=context.meta, **fields)])
            stream_id = source_stream(caller.workspace_id, cmd.source, cmd.external_id)
            history = await context.load(stream_id, IssueEvent)
            current = decide.project_issue(None, cast(list[AnyIssueEvent], history))
            if current is None:
                return Decision(stream_id, (), [decide.open_issue(issue_id=stream_id, meta=context.meta, **fields)])
            _check_workspace(current, caller)
            return Decision(stream_id, history, decide.edit_issue(current, _edit_from(cmd), context.meta))

        return await self._runner.run(caller, deciding)

    async def edit_issue(self, issue_id: str, edit: IssueEdit, caller: Caller,
                         expected_version: int | None = None) -> Result:
        return await self._on_issue(issue_id, caller, lambda issue, meta: decide.edit_issue(issue, edit, meta),
                                    expected_version)

    async def close_issue(self, issue_id: str, caller: Caller, expected_version: int | None = None) -> Result:
        return await self._on_issue(issue_id, caller, decide.close_issue, expected_version)

    async def reopen_issue(self, issue_id: str, caller: Caller, expected_version: int | None = None) -> Result:
        return await self._on_issue(issue_id, caller, decide.reopen_issue, expected_version)

    async def link_pattern(self, issue_id: str, pattern_id: PatternId, caller: Caller,
                           expected_version: int | None = None) -> Result:
        return await self._on_issue(issue_id, caller, lambda issue, meta: decide.link_pattern(issue, pattern_id, meta),
                                    expected_version)

    async def unlink_pattern(self, issue_id: str, caller: Caller, expected_version: int | None = None) -> Result:
        return await self._on_issue(issue_id, caller, decide.unlink_pattern, expected_version)

    async def comment_on_issue(self, issue_id: str, body: str, caller: Caller) -> Result:
        comment_id = CommentId(render("cmt", self._runner.new_uuid()))
        return await self._on_issue(issue_id, caller, lambda issue, meta: [
            decide.comment_on_issue(issue, comment_id=comment_id, body=body, meta=meta)])

    async def bulk(self, issue_ids: Sequence[str], op: BulkOp, value: str | None, caller: Caller
                   ) -> list[BulkOutcome]:
        """Each id succeeds or fails on its own; running concurrently, the successful ones share a transaction."""
        rule = _bulk_rule(op, value)

        async def one(issue_id: str) -> BulkOutcome:
            try:
                return BulkOutcome(id=issue_id, result=await self._on_issue(issue_id, caller, rule))
            except (NotFound, DomainError, ConcurrencyConflict) as exc:
                return BulkOutcome(id=issue_id, error=exc)

        return list(await asyncio.gather(*(one(issue_id) for issue_id in issue_ids)))

    async def _on_issue(self, issue_id: str, caller: Caller, rule: Rule, expected_version: int | None = None
                        ) -> Result:
        stream_id = parse("iss", issue_id)

        async def deciding(context: Context) -> Decision:
            history = [] if stream_id is None else await context.load(stream_id, IssueEvent)
            current = decide.project_issue(None, cast(list[AnyIssueEvent], history))
            if current is None or stream_id is None or current.workspace_id != caller.workspace_id:
                raise NotFound("issue", issue_id)
            return Decision(stream_id, history, rule(current, context.meta))

        return await self._runner.run(caller, deciding, expected_version=expected_version)


def _check_workspace(issue: Issue, caller: Caller) -> None:
    if issue.workspace_id != caller.workspace_id:
        raise NotFound("issue", render("iss", issue.id))


def _edit_from(cmd: OpenIssue) -> IssueEdit:
    return IssueEdit(title=cmd.title, body=cmd.body, severity=cmd.severity, team=cmd.team,
                     assignee_id=cmd.assignee_id, external_url=cmd.external_url,
                     metadata=cmd.metadata if cmd.metadata is not None else msgspec.UNSET)


def _bulk_rule(op: BulkOp, value: str | None) -> Rule:
    match op:
        case BulkOp.SET_STATUS:
            status = Status(value or "")
            return lambda issue, meta: decide.change_status(issue, status, meta)
        case BulkOp.ASSIGN:
            edit = IssueEdit(assignee_id=UserId(value) if value else None)
            return lambda issue, meta: decide.edit_issue(issue, edit, meta)
        case BulkOp.SET_TEAM:
            edit = IssueEdit(team=value or None)
            return lambda issue, meta: decide.edit_issue(issue, edit, meta)
        case BulkOp.LINK_PATTERN:
            pattern_id = PatternId(value or "")
            return lambda issue, meta: decide.link_pattern(issue, pattern_id, meta)
