"""Issue commands: load the stream, decide with the pure domain, append through group commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from enum import StrEnum
from typing import cast
from uuid import UUID

import msgspec

from adapters.event_store import EventStore
from adapters.ids import keyed_uuid, new_id, new_uuid
from commands.caller import Caller
from commands.errors import NotFound, StaleVersion
from commands.group_commit import ConcurrencyConflict, GroupCommitter
from domain.errors import DomainError
from domain.events import Meta
from domain.ids import CommentId, IssueId, PatternId, UserId, parse, render
from domain.issues import issue as decide
from domain.issues.events import AnyIssueEvent, IssueEvent, Metadata, Severity, Status
from domain.issues.issue import Issue, IssueEdit

MAX_ATTEMPTS = 3


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


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """What a command did: the stream it touched, its version now, and the position to wait for."""

    issue_id: IssueId
    version: int
    position: int
    created: bool = False
    comment_id: CommentId | None = None
    stream: tuple[AnyIssueEvent, ...] = ()


class BulkOp(StrEnum):
    SET_STATUS = "set_status"
    ASSIGN = "assign"
    SET_TEAM = "set_team"
    LINK_PATTERN = "link_pattern"


class BulkOutcome(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    accepted: Accepted | None = None
    error: Exception | None = None


Decision = Callable[[Issue, Meta], Sequence[IssueEvent]]


def utc_now() -> datetime:
    return datetime.now(UTC)


class IssueCommands:
    def __init__(self, store: EventStore, committer: GroupCommitter, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._committer = committer
        self._clock = clock

    async def open_issue(self, cmd: OpenIssue, caller: Caller) -> Accepted:
        """Same source + external_id updates the existing issue instead of opening a second one."""
        if cmd.external_id is None:
            stream_id = new_uuid()
            event = decide.open_issue(issue_id=stream_id, meta=self._meta(caller), **msgspec.structs.asdict(cmd))
            return await self._accept(stream_id, [event], caller, created=True)
        stream_id = keyed_uuid(caller.workspace_id, "issue-source", cmd.source, cmd.external_id)
        for _ in range(MAX_ATTEMPTS):
            current, history = await self._load_stream(stream_id)
            meta = self._meta(caller)
            if current is None:
                events: Sequence[IssueEvent] = [decide.open_issue(issue_id=stream_id, meta=meta,
                                                                  **msgspec.structs.asdict(cmd))]
            else:
                self._check_workspace(current, caller)
                events = decide.edit_issue(current, _edit_from(cmd), meta)
            try:
                return await self._accept(stream_id, events, caller, created=current is None, current=current,
                                          history=history)
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict("issue changed concurrently; retry")

    async def edit_issue(self, issue_id: str, edit: IssueEdit, caller: Caller, expected_version: int | None = None
                   ) -> Accepted:
        return await self._run(issue_id, caller, expected_version,
                               lambda issue, meta: decide.edit_issue(issue, edit, meta))

    async def close_issue(self, issue_id: str, caller: Caller, expected_version: int | None = None) -> Accepted:
        return await self._run(issue_id, caller, expected_version, decide.close_issue)

    async def reopen_issue(self, issue_id: str, caller: Caller, expected_version: int | None = None) -> Accepted:
        return await self._run(issue_id, caller, expected_version, decide.reopen_issue)

    async def link_pattern(self, issue_id: str, pattern_id: PatternId, caller: Caller,
                     expected_version: int | None = None) -> Accepted:
        return await self._run(issue_id, caller, expected_version,
                         lambda issue, meta: decide.link_pattern(issue, pattern_id, meta))

    async def unlink_pattern(self, issue_id: str, caller: Caller, expected_version: int | None = None) -> Accepted:
        return await self._run(issue_id, caller, expected_version, decide.unlink_pattern)

    async def comment_on_issue(self, issue_id: str, body: str, caller: Caller) -> Accepted:
        comment_id = CommentId(new_id("cmt"))
        accepted = await self._run(issue_id, caller, None, lambda issue, meta: [
            decide.comment_on_issue(issue, comment_id=comment_id, body=body, meta=meta)])
        return msgspec.structs.replace(accepted, comment_id=comment_id)

    async def bulk(self, issue_ids: Sequence[str], op: BulkOp, value: str | None,
                   caller: Caller) -> list[BulkOutcome]:
        """Each id succeeds or fails on its own; the successful ones share one transaction."""
        decision = _bulk_decision(op, value)
        submitted: list[tuple[str, UUID, Sequence[IssueEvent], Future[list[int]]] | BulkOutcome] = []
        for issue_id in issue_ids:
            try:
                current, _ = await self._load_for(issue_id, caller)
                events = decision(current, self._meta(caller))
            except (NotFound, DomainError) as exc:
                submitted.append(BulkOutcome(id=issue_id, error=exc))
                continue
            submitted.append((issue_id, current.id, events, self._committer.submit(events)))
        return [item if isinstance(item, BulkOutcome) else await self._settle(*item, caller, decision)
                for item in submitted]

    async def _settle(self, issue_id: str, stream_id: UUID, events: Sequence[IssueEvent], future: Future[list[int]],
                caller: Caller, decision: Decision) -> BulkOutcome:
        try:
            positions = await asyncio.wrap_future(future)
            version = events[-1].originator_version if events else (await self._load_for(issue_id, caller))[0].version
            return BulkOutcome(id=issue_id, accepted=Accepted(
                issue_id=IssueId(render("iss", stream_id)), version=version, position=max(positions, default=0)))
        except ConcurrencyConflict:
            try:
                return BulkOutcome(id=issue_id, accepted=await self._run(issue_id, caller, None, decision))
            except (NotFound, DomainError, ConcurrencyConflict) as exc:
                return BulkOutcome(id=issue_id, error=exc)

    async def _load_for(self, issue_id: str, caller: Caller) -> tuple[Issue, list[AnyIssueEvent]]:
        stream_id = parse("iss", issue_id)
        current, history = (None, []) if stream_id is None else await self._load_stream(stream_id)
        if current is None or current.workspace_id != caller.workspace_id:
            raise NotFound("issue", issue_id)
        return current, history

    async def _run(self, issue_id: str, caller: Caller, expected_version: int | None, decision: Decision) -> Accepted:
        for _ in range(MAX_ATTEMPTS):
            current, history = await self._load_for(issue_id, caller)
            if expected_version is not None and expected_version != current.version:
                raise StaleVersion(expected_version, current.version)
            try:
                return await self._accept(current.id, decision(current, self._meta(caller)), caller, current=current,
                                          history=history)
            except ConcurrencyConflict:
                if expected_version is not None:
                    raise StaleVersion(expected_version, current.version + 1) from None
        raise ConcurrencyConflict("issue changed concurrently; retry")

    async def _load_stream(self, stream_id: UUID) -> tuple[Issue | None, list[AnyIssueEvent]]:
        stored = await asyncio.to_thread(self._store.load, stream_id)
        events = cast(list[AnyIssueEvent], [e for e in stored if isinstance(e, IssueEvent)])
        return decide.project_issue(None, events), events

    async def _accept(self, stream_id: UUID, events: Sequence[IssueEvent], caller: Caller, *, created: bool = False,
                      current: Issue | None = None, history: Sequence[AnyIssueEvent] = ()) -> Accepted:
        positions = await asyncio.wrap_future(self._committer.submit(events, caller.precondition))
        version = events[-1].originator_version if events else (current.version if current else 0)
        return Accepted(issue_id=IssueId(render("iss", stream_id)), version=version,
                        position=max(positions, default=0), created=created,
                        stream=(*history, *cast(Sequence[AnyIssueEvent], events)))

    def _meta(self, caller: Caller) -> Meta:
        return caller.meta(self._clock())

    @staticmethod
    def _check_workspace(issue: Issue, caller: Caller) -> None:
        if issue.workspace_id != caller.workspace_id:
            raise NotFound("issue", render("iss", issue.id))


def _edit_from(cmd: OpenIssue) -> IssueEdit:
    return IssueEdit(title=cmd.title, body=cmd.body, severity=cmd.severity, team=cmd.team,
                     assignee_id=cmd.assignee_id, external_url=cmd.external_url,
                     metadata=cmd.metadata if cmd.metadata is not None else msgspec.UNSET)


def _bulk_decision(op: BulkOp, value: str | None) -> Decision:
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
