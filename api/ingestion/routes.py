"""The ingestion API: push signals (one, a batch, a provider payload) and poll a job's status.

Each push is one command (commands/ingestion.py): normalized here, record by record, then decided and appended in
one transaction with the job that records it. A single signal answers once the `issues` and `ingestion` read
models have it (the issue "is created immediately", like `POST /v1/issues`, and its job, which may be recorded on
the issue's own event, is readable); a batch answers once it is durable and the status route reads the job's own
stream until the read model has it, so the batch's throughput does not wait on projection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from adapters.event_store import EventStore
from adapters.postgres import tenant_transaction
from api.core.auth import requires
from api.core.consistency import POSITION_HEADER
from api.core.consistency import settle as settle_on
from api.core.deps import provide_caller
from api.core.errors import error_responses, not_found, validation_error
from api.ingestion import schemas
from commands.caller import Caller
from commands.ingestion import IngestionCommands, job_of
from domain.ids import parse, render
from domain.ingestion import job as jobs
from domain.ingestion.events import IngestionJobCompleted, IngestionJobEvent, JobKind, RejectedRecord
from domain.ingestion.normalize import CanonicalRecord, Rejected, normalize_record
from domain.ingestion.sources import NORMALIZERS, normalize_payload
from projections.ingestion import queries
from projections.ingestion.projector import NAME as INGESTION_PROJECTION
from projections.issues.projector import NAME as ISSUES_PROJECTION

SCOPE = "ingest:write"
SOURCES = ("custom_api", *sorted(NORMALIZERS))
BATCH_BODY_BYTES = 8 * 1_048_576
"""A batch of 500 records with real descriptions outgrows the 1 MiB default; each record is still bounded."""
PUSHED = error_responses(e409="conflict: the issues changed concurrently too often; retry")
_raw = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class IngestionContext:
    caller: Caller
    commands: IngestionCommands
    state: State


def provide_context(request: Request[Any, Any, Any]) -> IngestionContext:
    state = request.app.state
    return IngestionContext(caller=provide_caller(request), commands=state.ingestion_commands, state=state)


Ctx = NamedDependency[IngestionContext]


def _rejected_as_400(exc: Rejected) -> Exception:
    return validation_error(exc.field, exc.details.get("reason", exc.message))


async def _single(ctx: IngestionContext, record: CanonicalRecord, kind: JobKind, source: str | None
                  ) -> Response[schemas.IngestResponse]:
    accepted = await ctx.commands.ingest(ctx.caller, kind=kind, received=1, records=[(0, record)], source=source,
                                         connector_id=record.connector_id)
    job = job_of(accepted)
    headers = await settle_on(ctx.state, (ISSUES_PROJECTION, accepted.position),
                              (INGESTION_PROJECTION, accepted.position))
    body = schemas.IngestResponse(accepted=len(job.issues), rejected=job.rejected,
                                  issue_id=job.issues[0].issue_id if job.issues else None,
                                  job_id=_job_id(job))
    return Response(body, status_code=202, headers={**headers, "Location": f"/v1/ingest/status/{body.job_id}"})


def _job_id(job: IngestionJobCompleted) -> str:
    return render("ing_job", job.originator_id)


class IngestionController(Controller):
    path = "/v1/ingest"
    tags = ("Ingestion",)
    dependencies = {"ctx": Provide(provide_context, sync_to_thread=False)}  # noqa: RUF012

    @post("/events", guards=[requires(SCOPE)], status_code=202, responses=PUSHED)
    async def ingest_event(self, data: JSONBody[schemas.IngestEventRequest], ctx: Ctx
                           ) -> Response[schemas.IngestResponse]:
        """Push one raw signal: the issue with this source + external_id is created, or updated (a resubmission
        that changes nothing appends nothing). Answers once the issue is readable."""
        try:
            record = normalize_record(data.raw())
        except Rejected as exc:
            raise _rejected_as_400(exc) from None
        return await _single(ctx, record, JobKind.EVENT, None)

    @post("/batch", guards=[requires(SCOPE)], status_code=202, responses=PUSHED,
          request_max_body_size=BATCH_BODY_BYTES)
    async def ingest_batch(self, data: JSONBody[schemas.IngestBatchRequest], ctx: Ctx
                           ) -> Response[schemas.BatchResponse]:
        """Push 1–500 pre-normalized issue records. Each is checked and applied on its own: failures come back in
        `rejected[{index, reason}]`, the accepted records' issues in `issue_ids` (in order). A key repeated within
        the batch updates the issue its first occurrence created. Answers once the batch is durable."""
        records: list[tuple[int, CanonicalRecord]] = []
        rejected: list[RejectedRecord] = []
        for index, raw in enumerate(data.records):
            try:
                records.append((index, normalize_record(raw)))
            except Rejected as exc:
                rejected.append(RejectedRecord(index=index, reason=exc.message))
        connectors = {record.connector_id for _, record in records}
        accepted = await ctx.commands.ingest(ctx.caller, kind=JobKind.BATCH, received=len(data.records),
                                             records=records, rejected=rejected,
                                             connector_id=connectors.pop() if len(connectors) == 1 else None)
        job = job_of(accepted)
        body = schemas.BatchResponse(job_id=_job_id(job), status=jobs.JobStatus.COMPLETED.value,
                                     accepted=len(job.issues), rejected=job.rejected,
                                     issue_ids=[issue.issue_id for issue in job.issues])
        return Response(body, status_code=202, headers={POSITION_HEADER: str(accepted.position),
                                                        "Location": f"/v1/ingest/status/{body.job_id}"})

    @post("/{source:str}/issues", guards=[requires(SCOPE)], status_code=202, responses=PUSHED)
    async def ingest_source_issue(self, request: Request[Any, Any, Any], source: FromPath[str],
                                  data: JSONBody[schemas.SourcePayload], ctx: Ctx
                                  ) -> Response[schemas.IngestResponse]:
        """Push one issue in its provider's own shape: `jira`, `pagerduty`, `github`, `sentry`, `datadog` (see
        docs/ingestion.md), or `custom_api` with the canonical record. Normalized, then like `/v1/ingest/events`."""
        if source not in SOURCES:
            raise not_found("source", source)
        payload = _raw.decode(await request.body())
        try:
            record = normalize_record(payload) if source == "custom_api" else normalize_payload(source, payload)
        except Rejected as exc:
            raise _rejected_as_400(exc) from None
        return await _single(ctx, record, JobKind.SOURCE, source)

    @get("/status/{job_id:str}", guards=[requires(SCOPE)])
    async def get_ingestion_job(self, job_id: FromPath[str], ctx: Ctx) -> schemas.JobStatusResponse:
        """An ingestion job: `status`, `accepted`, `rejected[{index, reason}]`, `issue_ids[]` and counts."""
        stream_id = parse("ing_job", job_id)
        if stream_id is None:
            raise not_found("ingestion job", job_id)
        public = render("ing_job", stream_id)
        workspace = ctx.caller.workspace_id
        async with tenant_transaction(ctx.state.read_pool, workspace) as conn:
            state = await queries.get_job(conn, workspace, public)
        if state is None:
            state = await _from_stream(ctx.state.store, stream_id)
        if state is None or state.workspace_id != workspace:
            raise not_found("ingestion job", job_id)
        return schemas.JobStatusResponse.of(public, state)


async def _from_stream(store: EventStore, stream_id: UUID) -> jobs.JobState | None:
    """A job the read model does not have yet (a batch answers before projection): fold its own stream, which the
    command appended before answering, with the read model's fold."""
    events = await asyncio.to_thread(store.load, stream_id)
    return jobs.fold(event for event in events if isinstance(event, IngestionJobEvent))
