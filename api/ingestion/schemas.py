"""Request and response bodies of the ingestion API (docs-facts 10.4; api.md "Connectors, sync runs, ingestion
jobs"). Records are checked one by one by domain/ingestion/normalize.py, so a batch types them loosely: one bad
record is rejected on its own instead of refusing the whole batch."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

import msgspec

from api.core.input_policy import RequestBody
from domain.ingestion.events import RejectedRecord
from domain.ingestion.job import JobState

BATCH_MAX = 500
RECORD_FIELDS = ("`external_id` (dedup key with `source`), `source` (unknown values become `custom_api`), "
                 "`title` (1–300 characters; falls back to `external_id`), `body` (default \"\"), `severity` "
                 "(`p1`–`p4` or critical/high/medium/low, default `p3`), `team`, `external_url`, `metadata` (object), "
                 "`source_created_at`, `source_updated_at` (ISO 8601 with offset), `connector_id`")


class IngestEventRequest(RequestBody, kw_only=True):
    """One raw signal. Fields left out of a resubmission leave the issue's value as it is."""

    source: Annotated[str | None, msgspec.Meta(
        description="jira, github, pagerduty, servicenow, datadog, sentry, opsgenie, linear, zendesk or custom_api; "
                    "any other value becomes custom_api (default)")] | msgspec.UnsetType = msgspec.UNSET
    external_id: Annotated[str | None, msgspec.Meta(
        description="The dedup key (1–255) with source: resubmitting updates the issue")] | msgspec.UnsetType \
        = msgspec.UNSET
    title: Annotated[str | None, msgspec.Meta(
        description="1–300 characters; falls back to external_id")] | msgspec.UnsetType = msgspec.UNSET
    body: str | None | msgspec.UnsetType = msgspec.UNSET
    severity: Annotated[str | None, msgspec.Meta(
        description="p1 (critical), p2 (high), p3 (medium, the default) or p4 (low); the words are accepted too")] \
        | msgspec.UnsetType = msgspec.UNSET
    team: str | None | msgspec.UnsetType = msgspec.UNSET
    external_url: str | None | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | None | msgspec.UnsetType = msgspec.UNSET
    source_created_at: datetime | None | msgspec.UnsetType = msgspec.UNSET
    source_updated_at: datetime | None | msgspec.UnsetType = msgspec.UNSET
    connector_id: str | None | msgspec.UnsetType = msgspec.UNSET

    def raw(self) -> dict[str, Any]:
        """The fields given, as a record for the normalizer."""
        return {name: value for name, value in msgspec.structs.asdict(self).items() if value is not msgspec.UNSET}


class IngestBatchRequest(RequestBody, kw_only=True):
    checks_own_values: ClassVar[bool] = True
    """domain/ingestion/normalize.py checks each record's text and nesting: a bad record is rejected alone."""

    records: Annotated[list[Any], msgspec.Meta(
        min_length=1, max_length=BATCH_MAX,
        description=f"1–{BATCH_MAX} issue records, each checked on its own: {RECORD_FIELDS}")]


class SourcePayload(RequestBody, kw_only=True, forbid_unknown_fields=False):
    """The provider's own payload (a Jira issue or `jira:issue_*` webhook, a PagerDuty incident or v3 webhook, a
    GitHub issue or `issues` webhook, a Sentry issue or issue webhook, a Datadog monitor notification); for
    `custom_api`, a canonical record. See docs/ingestion.md for each shape."""

    title: str | None | msgspec.UnsetType = msgspec.UNSET
    external_id: str | None | msgspec.UnsetType = msgspec.UNSET


class IngestResponse(msgspec.Struct, kw_only=True):
    accepted: int
    rejected: list[RejectedRecord]
    issue_id: str | None
    job_id: str


class BatchResponse(msgspec.Struct, kw_only=True):
    job_id: str
    status: str
    accepted: int
    rejected: list[RejectedRecord]
    issue_ids: list[str]
    """The accepted records' issues, in record order (a key repeated in the batch repeats its issue)."""


class JobStatusResponse(msgspec.Struct, kw_only=True):
    job_id: str
    status: str
    kind: str
    source: str | None
    connector_id: str | None
    """The connector whose inbound webhook delivery or sync page this job was; null for pushes to /v1/ingest."""
    received: int
    accepted: int
    rejected: list[RejectedRecord]
    issue_ids: list[str]
    created: int
    updated: int
    unchanged: int
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, job_id: str, state: JobState) -> JobStatusResponse:
        return cls(job_id=job_id, status=state.status.value, kind=state.kind.value, source=state.source,
                   connector_id=state.connector_id,
                   received=state.received, accepted=state.accepted, rejected=state.rejected,
                   issue_ids=state.issue_ids, created=state.created, updated=state.updated,
                   unchanged=state.unchanged, created_at=state.created_at, completed_at=state.completed_at)
