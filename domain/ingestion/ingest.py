"""The ingestion decision: canonical records applied to their issues, in order, with the job that records it.

Pure: the caller loads the issues (keyed by workspace + source + external_id, so the same key always names the
same stream) and supplies the ids; this decides what to append. A record whose key repeats within the push
applies on top of the earlier one; a record that changes nothing appends nothing (it is still accepted:
`unchanged`). A push of one record that opens or changes its issue may record its job on that issue event
(`ingested_by`) instead of an `IngestionJobCompleted` of its own: half the events for the commonest push.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar
from uuid import UUID

import msgspec

from domain.errors import DomainError
from domain.events import DomainEvent, Meta, envelope
from domain.ids import render
from domain.ingestion.events import IngestedIssue, IngestionJobCompleted, JobKind, Outcome, RejectedRecord, carrying
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


class Ingested(msgspec.Struct, frozen=True):
    events: list[DomainEvent]
    """What to append: the issue events of every record (opened, or edited where something changed), then the
    job's event; or, folded, the one issue event carrying the job."""
    job: IngestionJobCompleted
    """The job as decided, appended or folded."""


def ingest(*, job_id: UUID, meta: Meta, kind: JobKind, received: int, records: Sequence[Keyed],
           rejected: Sequence[RejectedRecord], issues: Mapping[UUID, Issue], source: str | None = None,
           connector_id: str | None = None, fold: bool = False) -> Ingested:
    """Decide every record in order. With `fold`, a push whose only record opened or changed its issue records its
    job on that one event (`IssueOpened`/`IssueDetailsEdited.ingested_by`): the caller allows it where nothing
    reads the job's own stream (not for a batch, whose status is read from it before projection, nor for an
    inbound delivery, whose stream is its replay guard)."""
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
    job = IngestionJobCompleted(**envelope(meta, job_id, 1), kind=kind, received=received, rejected=refused,
                                issues=ingested, source=source, connector_id=connector_id)
    if fold and len(events) == 1 and len(ingested) == 1 and not refused:
        return Ingested([carrying(events[0], job)], job)
    return Ingested([*events, job], job)


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
