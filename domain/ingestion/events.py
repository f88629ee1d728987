"""Ingestion job events: what one push (a signal, a batch, a provider payload) did. Additive-only."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import msgspec

from domain.events import DomainEvent
from domain.ids import parse, render
from domain.issues.events import IngestedBy, IssueDetailsEdited, IssueOpened


class JobKind(StrEnum):
    EVENT = "event"
    BATCH = "batch"
    SOURCE = "source"


class Outcome(StrEnum):
    """What an accepted record did to its issue."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class RejectedRecord(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    reason: str


class IngestedIssue(msgspec.Struct, frozen=True, kw_only=True):
    """One accepted record: its position in the push, its issue, and what it did to it."""

    index: int
    issue_id: str
    outcome: Outcome
    source: str
    external_id: str | None = None


class IngestionJobEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "ingestion_job"


class IngestionJobCompleted(IngestionJobEvent, frozen=True, kw_only=True):
    """A push was processed: appended in the same transaction as the issue events it caused, so a job that exists
    is complete. `issues` (in record order) is what `issue.ingested` subscribers read: one entry per accepted
    record, `unchanged` included (a resubmission that changed nothing appends no issue event)."""

    kind: JobKind
    received: int
    rejected: list[RejectedRecord] = msgspec.field(default_factory=list)
    issues: list[IngestedIssue] = msgspec.field(default_factory=list)
    source: str | None = None
    """The path's source for `POST /v1/ingest/{source}/issues`; None otherwise (each record names its own)."""
    connector_id: str | None = None


def carrying(event: DomainEvent, job: IngestionJobCompleted) -> DomainEvent:
    """`event` (the push's one issue event) recording `job` in its `ingested_by`: what `folded_job` reads back."""
    assert isinstance(event, IssueOpened | IssueDetailsEdited) and len(job.issues) == 1
    (issue,) = job.issues
    mark = IngestedBy(job_id=render("ing_job", job.originator_id), kind=job.kind.value, record_source=issue.source,
                      external_id=issue.external_id, source=job.source, connector_id=job.connector_id)
    return msgspec.structs.replace(event, ingested_by=mark)


def folded_job(event: DomainEvent) -> IngestionJobCompleted | None:
    """The job an issue event records in `ingested_by`, exactly as `IngestionJobCompleted` would have told it (the
    `ingestion` read model, `issue.ingested` deliveries and the command's answer read it as that; the audit log
    keeps the issue event's own entry); None for any other event."""
    if not isinstance(event, IssueOpened | IssueDetailsEdited) or isinstance(event.ingested_by, msgspec.UnsetType):
        return None
    mark = event.ingested_by
    job_id = parse("ing_job", mark.job_id)
    assert job_id is not None
    outcome = Outcome.CREATED if isinstance(event, IssueOpened) else Outcome.UPDATED
    issue = IngestedIssue(index=0, issue_id=render("iss", event.originator_id), outcome=outcome,
                          source=mark.record_source, external_id=mark.external_id)
    return IngestionJobCompleted(originator_id=job_id, originator_version=1, occurred_at=event.occurred_at,
                                 workspace_id=event.workspace_id, actor=event.actor,
                                 correlation_id=event.correlation_id, causation_id=event.causation_id,
                                 client_ip=event.client_ip, kind=JobKind(mark.kind), received=1,
                                 issues=[issue], source=mark.source, connector_id=mark.connector_id)


AnyIngestionJobEvent = IngestionJobCompleted
INGESTION_JOB_EVENT_TYPES: tuple[type[IngestionJobEvent], ...] = (IngestionJobCompleted,)
