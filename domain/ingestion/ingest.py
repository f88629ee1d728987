"""The ingestion decision: canonical records applied to their issues, in order, with the job that records it.

Pure: the caller loads the issues (keyed by workspace + source + external_id, so the same key always names the
same stream) and supplies the ids; this decides what to append. A record whose key repeats within the push
applies on top of the earlier one; a record that changes nothing appends nothing (it is still accepted:
`unchanged`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar
from uuid import UUID

import msgspec

from domain.errors import DomainError
from domain.events import DomainEvent, Meta, envelope
from domain.ids import render
from domain.ingestion.events import IngestedIssue, IngestionJobCompleted, JobKind, Outcome, RejectedRecord
from domain.ingestion.normalize import DEFAULT_SEVERITY, CanonicalRecord
from domain.issues import issue as decide
from domain.issues.events import AnyIssueEvent
from domain.issues.issue import Issue, IssueEdit

T = TypeVar("T")


class Keyed(msgspec.Struct, frozen=True):
    """An accepted record, its index in the push, and the issue stream it goes to."""

    index: int
    stream_id: UUID
    record: CanonicalRecord


def ingest(*, job_id: UUID, meta: Meta, kind: JobKind, received: int, records: Sequence[Keyed],
           rejected: Sequence[RejectedRecord], issues: Mapping[UUID, Issue], source: str | None = None,
           connector_id: str | None = None) -> list[DomainEvent]:
    """The issue events of every record (opened, or edited where something changed), then the job's event."""
    current = dict(issues)
    refused = list(rejected)
    events: list[DomainEvent] = []
    ingested: list[IngestedIssue] = []
    for keyed in records:
        record = keyed.record
        try:
            changes, outcome = _apply(current.get(keyed.stream_id), keyed.stream_id, record, meta)
        except DomainError as exc:
            refused.append(RejectedRecord(index=keyed.index, reason=exc.message))
            continue
        if changes:
            current[keyed.stream_id] = decide.project_issue(current.get(keyed.stream_id), changes)  # type: ignore[assignment]
            events.extend(changes)
        ingested.append(IngestedIssue(index=keyed.index, issue_id=render("iss", keyed.stream_id), outcome=outcome,
                                      source=record.source, external_id=record.external_id))
    refused.sort(key=lambda item: item.index)
    events.append(IngestionJobCompleted(**envelope(meta, job_id, 1), kind=kind, received=received, rejected=refused,
                                        issues=ingested, source=source, connector_id=connector_id))
    return events


def _apply(issue: Issue | None, stream_id: UUID, record: CanonicalRecord, meta: Meta
           ) -> tuple[list[AnyIssueEvent], Outcome]:
    if issue is None:
        opened = decide.open_issue(
            issue_id=stream_id, meta=meta, title=record.title, body=_or(record.body, ""),
            severity=_or(record.severity, DEFAULT_SEVERITY), source=record.source, external_id=record.external_id,
            team=_or(record.team, None), external_url=_or(record.external_url, None),
            metadata=_or(record.metadata, {}), source_created_at=record.source_created_at)
        return [opened], Outcome.CREATED
    if issue.workspace_id != meta.workspace_id:
        raise DomainError("the issue belongs to another workspace")
    edit = IssueEdit(title=record.title, body=record.body, severity=record.severity, team=record.team,
                     external_url=record.external_url, metadata=record.metadata)
    changes = decide.edit_issue(issue, edit, meta)
    return changes, Outcome.UPDATED if changes else Outcome.UNCHANGED  # type: ignore[return-value]


def _or(value: T | msgspec.UnsetType, default: T) -> T:
    return default if value is msgspec.UNSET else value
