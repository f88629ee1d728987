"""Ingestion job events: what one push (a signal, a batch, a provider payload) did. Additive-only."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import msgspec

from domain.events import DomainEvent


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


AnyIngestionJobEvent = IngestionJobCompleted
INGESTION_JOB_EVENT_TYPES: tuple[type[IngestionJobEvent], ...] = (IngestionJobCompleted,)
