"""The Issue aggregate: its state, the fold over its events, and the decisions that produce new ones."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import TypeVar, assert_never
from uuid import UUID

import msgspec

from domain.errors import InvalidTransition, InvalidValue
from domain.events import Meta, envelope
from domain.ids import CommentId, PatternId, UserId, WorkspaceId
from domain.issues.events import (
    AnyIssueEvent,
    IssueAnalyzed,
    IssueAssigned,
    IssueClosed,
    IssueCommented,
    IssueDetailsEdited,
    IssueEvent,
    IssueOpened,
    IssuePatternLinked,
    IssuePatternUnlinked,
    IssueReanalysisStarted,
    IssueReopened,
    IssueStatusChanged,
    Metadata,
    Severity,
    Stage,
    Status,
)

TITLE_MAX = 300


class Issue(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    workspace_id: WorkspaceId
    version: int
    status: Status
    title: str
    severity: Severity
    assignee_id: UserId | None
    pattern_id: PatternId | None
    resolved_at: datetime | None = None
    body: str | None = None
    team: str | None = None
    external_url: str | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)
    """The details an edit compares against, so that setting a field to its current value records nothing."""


class IssueEdit(msgspec.Struct, frozen=True, kw_only=True):
    """A requested change; UNSET fields are left as they are."""

    title: str | msgspec.UnsetType = msgspec.UNSET
    body: str | None | msgspec.UnsetType = msgspec.UNSET
    severity: Severity | msgspec.UnsetType = msgspec.UNSET
    status: Status | msgspec.UnsetType = msgspec.UNSET
    team: str | None | msgspec.UnsetType = msgspec.UNSET
    assignee_id: UserId | None | msgspec.UnsetType = msgspec.UNSET
    external_url: str | None | msgspec.UnsetType = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET


def evolve(issue: Issue | None, event: AnyIssueEvent) -> Issue:
    if isinstance(event, IssueOpened):
        return Issue(id=event.originator_id, workspace_id=event.workspace_id, version=event.originator_version,
                     status=Status.OPEN, title=event.title, severity=event.severity, assignee_id=event.assignee_id,
                     pattern_id=None, body=event.body, team=event.team, external_url=event.external_url,
                     metadata=event.metadata)
    assert issue is not None, "an issue stream starts with IssueOpened"
    issue = msgspec.structs.replace(issue, version=event.originator_version)
    match event:
        case IssueDetailsEdited():
            changed = {name: getattr(event, name) for name in _DETAIL_FIELDS
                       if getattr(event, name) is not msgspec.UNSET}
            return msgspec.structs.replace(issue, **changed)
        case IssueAssigned():
            return msgspec.structs.replace(issue, assignee_id=event.assignee_id)
        case IssueStatusChanged():
            resolved_at = event.occurred_at if event.to_status == Status.RESOLVED else None
            return msgspec.structs.replace(issue, status=event.to_status, resolved_at=resolved_at)
        case IssueClosed():
            resolved_at = issue.resolved_at or event.occurred_at
            return msgspec.structs.replace(issue, status=Status.CLOSED, resolved_at=resolved_at)
        case IssueReopened():
            return msgspec.structs.replace(issue, status=Status.OPEN, resolved_at=None)
        case IssuePatternLinked():
            return msgspec.structs.replace(issue, pattern_id=event.pattern_id)
        case IssuePatternUnlinked():
            return msgspec.structs.replace(issue, pattern_id=None)
        case IssueCommented() | IssueAnalyzed() | IssueReanalysisStarted():
            return issue
        case _:
            assert_never(event)


def project_issue(issue: Issue | None, events: Iterable[AnyIssueEvent]) -> Issue | None:
    return functools.reduce(evolve, events, issue)


def clean_title(title: str) -> str:
    """A title is 1 to 300 characters once surrounding blanks are removed."""
    title = title.strip()
    if not title:
        raise InvalidValue("title", "must not be blank")
    if len(title) > TITLE_MAX:
        raise InvalidValue("title", f"must be at most {TITLE_MAX} characters")
    return title


def open_issue(*, issue_id: UUID, meta: Meta, title: str, body: str | None = None,
               severity: Severity = Severity.MEDIUM, source: str = "manual", external_id: str | None = None,
               team: str | None = None, assignee_id: UserId | None = None, external_url: str | None = None,
               metadata: Metadata | None = None, source_created_at: datetime | None = None) -> IssueOpened:
    """An issue opens with a non-blank title."""
    return IssueOpened(**envelope(meta, issue_id, 1), title=clean_title(title), body=body, severity=severity,
                       source=source, external_id=external_id, team=team, assignee_id=assignee_id,
                       external_url=external_url, metadata=metadata or {}, source_created_at=source_created_at)


def edit_issue(issue: Issue, edit: IssueEdit, meta: Meta) -> list[IssueEvent]:
    """A closed issue is read-only until reopened; setting a field to its current value records nothing."""
    if issue.status == Status.CLOSED and _changes_anything(edit, issue):
        raise InvalidTransition("a closed issue changes only through reopen", status=issue.status.value)
    events: list[IssueEvent] = []
    details = _details(issue, edit, meta)
    if details is not None:
        events.append(details)
    if edit.assignee_id is not msgspec.UNSET and edit.assignee_id != issue.assignee_id:
        events.append(IssueAssigned(**envelope(meta, issue.id, issue.version + len(events) + 1),
                                    assignee_id=edit.assignee_id))
    if edit.status is not msgspec.UNSET:
        moved = issue if not events else msgspec.structs.replace(issue, version=issue.version + len(events))
        events.extend(change_status(moved, edit.status, meta))
    return events


def _changes_anything(edit: IssueEdit, issue: Issue) -> bool:
    status_change = edit.status is not msgspec.UNSET and edit.status != issue.status
    other = any(getattr(edit, name) is not msgspec.UNSET for name in IssueEdit.__struct_fields__ if name != "status")
    return status_change or other


def _details(issue: Issue, edit: IssueEdit, meta: Meta) -> IssueDetailsEdited | None:
    title = edit.title if edit.title is msgspec.UNSET else clean_title(edit.title)
    edited = IssueDetailsEdited(
        **envelope(meta, issue.id, issue.version + 1),
        title=_unless_same(title, issue.title), severity=_unless_same(edit.severity, issue.severity),
        body=_unless_same(edit.body, issue.body), team=_unless_same(edit.team, issue.team),
        external_url=_unless_same(edit.external_url, issue.external_url),
        metadata=_unless_same(edit.metadata, issue.metadata),
    )
    changed = any(getattr(edited, name) is not msgspec.UNSET for name in _DETAIL_FIELDS)
    return edited if changed else None


_DETAIL_FIELDS = ("title", "body", "severity", "team", "external_url", "metadata")
T = TypeVar("T")


def _unless_same(value: T | msgspec.UnsetType, current: T) -> T | msgspec.UnsetType:
    return msgspec.UNSET if value is msgspec.UNSET or value == current else value


def change_status(issue: Issue, to_status: Status, meta: Meta) -> list[IssueEvent]:
    """Any status may follow any other, except that a closed issue leaves `closed` only through reopen."""
    if to_status == issue.status:
        return []
    if issue.status == Status.CLOSED:
        raise InvalidTransition("a closed issue changes only through reopen", status=issue.status.value)
    env = envelope(meta, issue.id, issue.version + 1)
    if to_status == Status.CLOSED:
        return [IssueClosed(**env, from_status=issue.status)]
    return [IssueStatusChanged(**env, from_status=issue.status, to_status=to_status)]


def close_issue(issue: Issue, meta: Meta) -> list[IssueEvent]:
    """Closing a closed issue is a no-op."""
    return change_status(issue, Status.CLOSED, meta)


def reopen_issue(issue: Issue, meta: Meta) -> list[IssueEvent]:
    """Reopening puts the issue back to `open`; an open issue stays as it is."""
    if issue.status == Status.OPEN:
        return []
    return [IssueReopened(**envelope(meta, issue.id, issue.version + 1), from_status=issue.status)]


def comment_on_issue(issue: Issue, *, comment_id: CommentId, body: str, meta: Meta) -> IssueCommented:
    """A comment has a non-blank body; closed issues still take comments."""
    if not body.strip():
        raise InvalidValue("body", "must not be blank")
    return IssueCommented(**envelope(meta, issue.id, issue.version + 1), comment_id=comment_id, body=body)


def link_pattern(issue: Issue, pattern_id: PatternId, meta: Meta) -> list[IssueEvent]:
    """Linking the pattern an issue already has records nothing."""
    if issue.pattern_id == pattern_id:
        return []
    return [IssuePatternLinked(**envelope(meta, issue.id, issue.version + 1), pattern_id=pattern_id)]


def unlink_pattern(issue: Issue, meta: Meta) -> list[IssueEvent]:
    if issue.pattern_id is None:
        return []
    return [IssuePatternUnlinked(**envelope(meta, issue.id, issue.version + 1), pattern_id=issue.pattern_id)]


def start_reanalysis(issue: Issue, tier: str, meta: Meta) -> list[IssueEvent]:
    """The issue is analyzed again: `analyzing` until the detector answers."""
    return [IssueReanalysisStarted(**envelope(meta, issue.id, issue.version + 1), tier=tier)]


def record_analysis(issue: Issue, meta: Meta, *, stage: Stage, risk_score: int, root_cause: str | None,
                    contributing_factors: list[str], confidence: float | None, model: str) -> list[IssueEvent]:
    """The analysis of an issue as the detector made it; the risk is clamped to 0–100."""
    return [IssueAnalyzed(**envelope(meta, issue.id, issue.version + 1), stage=stage,
                          risk_score=max(0, min(100, risk_score)), root_cause=root_cause,
                          contributing_factors=contributing_factors, confidence=confidence, model=model)]
