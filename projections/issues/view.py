"""The issue read-model row and the pure fold that builds it: the projector, rebuild and API share it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import assert_never

import msgspec

from domain.ids import render
from domain.issues.events import (
    AnyIssueEvent,
    IssueAnalyzed,
    IssueAssigned,
    IssueClosed,
    IssueCommented,
    IssueDetailsEdited,
    IssueOpened,
    IssuePatternLinked,
    IssuePatternUnlinked,
    IssueReanalysisStarted,
    IssueReopened,
    IssueStatusChanged,
    Severity,
    Stage,
    Status,
)

SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


class Analysis(msgspec.Struct, frozen=True, kw_only=True):
    root_cause: str | None = None
    contributing_factors: list[str] = msgspec.field(default_factory=list)
    confidence: float | None = None
    model: str | None = None


class IssueView(msgspec.Struct, frozen=True, kw_only=True):
    """One issue as clients see it (`GET /v1/issues/{id}`)."""

    id: str
    workspace_id: str
    title: str
    body: str | None
    status: Status
    stage: Stage
    severity: Severity
    source: str
    external_id: str | None
    team: str | None
    assignee_id: str | None
    external_url: str | None
    metadata: dict[str, object]
    pattern_id: str | None
    risk_score: int
    analysis: Analysis | None
    comment_count: int
    version: int
    source_created_at: datetime | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


def apply(view: IssueView | None, event: AnyIssueEvent) -> IssueView | None:
    """Fold one event into the row; an event at or below the row's version changes nothing (redelivery)."""
    if isinstance(event, IssueOpened):
        return view if view is not None else _opened(event)
    if view is None or event.originator_version <= view.version:
        return view
    touched = msgspec.structs.replace(view, version=event.originator_version, updated_at=event.occurred_at)
    return _evolve(touched, event)


def _evolve(view: IssueView, event: AnyIssueEvent) -> IssueView:
    replace = msgspec.structs.replace
    match event:
        case IssueDetailsEdited():
            changes = {name: value for name, value in msgspec.structs.asdict(event).items()
                       if name in _EDITABLE and value is not msgspec.UNSET}
            return replace(view, **changes)
        case IssueAssigned():
            return replace(view, assignee_id=event.assignee_id)
        case IssueStatusChanged():
            resolved_at = event.occurred_at if event.to_status == Status.RESOLVED else None
            return replace(view, status=event.to_status, resolved_at=resolved_at)
        case IssueClosed():
            return replace(view, status=Status.CLOSED, resolved_at=view.resolved_at or event.occurred_at)
        case IssueReopened():
            return replace(view, status=Status.OPEN, resolved_at=None)
        case IssueCommented():
            return replace(view, comment_count=view.comment_count + 1)
        case IssuePatternLinked():
            return replace(view, pattern_id=event.pattern_id, stage=Stage.PATTERN_FOUND)
        case IssuePatternUnlinked():
            stage = Stage.ANALYZED if view.stage in (Stage.PATTERN_FOUND, Stage.IN_LOOP) else view.stage
            return replace(view, pattern_id=None, stage=stage)
        case IssueAnalyzed():
            return replace(view, stage=event.stage if view.pattern_id is not None else view.stage,
                           risk_score=event.risk_score, analysis=Analysis(
                root_cause=event.root_cause, contributing_factors=event.contributing_factors,
                confidence=event.confidence, model=event.model))
        case IssueReanalysisStarted():
            return replace(view, stage=Stage.ANALYZING)
        case IssueOpened():
            return view
        case _:
            assert_never(event)


_EDITABLE = frozenset({"title", "body", "severity", "team", "external_url", "metadata"})


def _opened(event: IssueOpened) -> IssueView:
    return IssueView(
        id=render("iss", event.originator_id), workspace_id=event.workspace_id, title=event.title, body=event.body,
        status=Status.OPEN, stage=Stage.NEW, severity=event.severity, source=event.source,
        external_id=event.external_id, team=event.team, assignee_id=event.assignee_id,
        external_url=event.external_url, metadata=event.metadata, pattern_id=None, risk_score=0, analysis=None,
        comment_count=0, version=event.originator_version, source_created_at=event.source_created_at,
        created_at=event.occurred_at, updated_at=event.occurred_at, resolved_at=None,
    )


_document_encoder = msgspec.json.Encoder(order="deterministic")
_TIMESTAMPS = ("source_created_at", "created_at", "updated_at", "resolved_at")
_UTC_OFFSET = timedelta(0)


def document(view: IssueView) -> str:
    """The issue's JSON exactly as the API serves it, rendered once when its row is written so that reads send
    it as stored. Deterministic (object keys sorted, timestamps in UTC): a rebuilt row renders byte for byte
    like the live one, whichever of them last came back from Postgres."""
    shifted = {name: value.astimezone(UTC) for name in _TIMESTAMPS
               if (value := getattr(view, name)) is not None and value.tzinfo is not UTC
               and value.utcoffset() != _UTC_OFFSET}
    return _document_encoder.encode(msgspec.structs.replace(view, **shifted) if shifted else view).decode()


def fold(view: IssueView | None, events: list[AnyIssueEvent]) -> IssueView | None:
    for event in events:
        view = apply(view, event)
    return view
