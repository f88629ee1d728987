"""An ingestion job as its status read: the fold the read model and the status route's fallback share."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

import msgspec

from domain.ingestion.events import AnyIngestionJobEvent, IngestionJobCompleted, JobKind, RejectedRecord


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class JobState(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: str
    version: int
    status: JobStatus
    kind: JobKind
    source: str | None
    connector_id: str | None
    """The connector whose inbound delivery or sync page this job was (None for pushes to /v1/ingest)."""
    received: int
    accepted: int
    rejected: list[RejectedRecord]
    issue_ids: list[str]
    created: int
    updated: int
    unchanged: int
    created_at: datetime
    completed_at: datetime | None


def evolve(job: JobState | None, event: AnyIngestionJobEvent) -> JobState:
    assert isinstance(event, IngestionJobCompleted)
    counts = {outcome: sum(1 for issue in event.issues if issue.outcome == outcome)
              for outcome in ("created", "updated", "unchanged")}
    return JobState(workspace_id=event.workspace_id, version=event.originator_version, status=JobStatus.COMPLETED,
                    kind=event.kind, source=event.source,
                    connector_id=event.connector_id, received=event.received, accepted=len(event.issues),
                    rejected=list(event.rejected), issue_ids=[issue.issue_id for issue in event.issues],
                    created=counts["created"], updated=counts["updated"], unchanged=counts["unchanged"],
                    created_at=job.created_at if job is not None else event.occurred_at,
                    completed_at=event.occurred_at)


def fold(events: Iterable[AnyIngestionJobEvent]) -> JobState | None:
    job = None
    for event in events:
        job = evolve(job, event)
    return job
