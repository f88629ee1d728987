"""Ingestion commands: a whole push (one signal, a batch of up to 500, a provider payload) is ONE decision.

Every record's issue is loaded in one read (keyed by workspace + source + external_id, the stream
`IssueCommands.open_issue` uses too), decided in memory, and appended with the job's event in one transaction
through the runner (whose group committer may share it with other requests); a single signal that opens or
changes its issue records the job on that issue's event instead. Within a process, pushes that
change the same issues take turns (`KeyClaims`); when another process appended to one of those issues first,
the runner decides the whole push again on a fresh load. So a race ends with one issue per key and every record
applied once (docs/decisions/014-ingestion-push-as-one-decision.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Sequence
from typing import cast
from uuid import UUID

from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.runner import CommandRunner, Context, Decision, Result
from domain.events import DomainEvent
from domain.ingestion.events import IngestionJobCompleted, JobKind, RejectedRecord, folded_job
from domain.ingestion.ingest import Keyed, ingest
from domain.ingestion.normalize import CanonicalRecord
from domain.issues import issue as decide
from domain.issues.events import AnyIssueEvent, IssueEvent
from domain.issues.issue import Issue

ATTEMPTS = 10
"""A push touches many issues, so it meets concurrent writers more often than a one-issue command."""


def job_of(result: Result) -> IngestionJobCompleted:
    """The job an ingestion command appended (or, replayed, had appended): its own event, or the one issue event
    it was folded into (that event's stream is then the result's)."""
    event = result.stream[-1]
    job = event if isinstance(event, IngestionJobCompleted) else folded_job(event)
    assert job is not None
    return job


def replayed(result: Result) -> bool:
    """An ingestion given a `job_stream` that already existed: nothing was decided or appended again."""
    return not result.created


class KeyClaims:
    """The issue streams this process's pushes are about to append to: a push that decided to change a stream
    another push holds waits until that push's append is answered, then decides again on what it committed; a
    push holds the streams it changes from its decision until its append is answered. So pushes never race on an
    issue within one process (a race would re-decide the whole push), while pushes that merely read the same
    issues (a resubmission that changes nothing) or touch others decide and append side by side, sharing group
    commits. Across processes the runner's retry on conflict remains."""

    def __init__(self) -> None:
        self._held: dict[UUID, asyncio.Future[None]] = {}

    def claim(self, streams: Collection[UUID]) -> asyncio.Future[None] | list[asyncio.Future[None]]:
        """A token holding every stream when none is held (atomic: no await), else what holds them to wait for."""
        busy = {id(f): f for f in (self._held.get(stream) for stream in streams) if f is not None}
        if busy:
            return list(busy.values())
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for stream in streams:
            self._held[stream] = mine
        return mine

    def release(self, streams: Collection[UUID], token: asyncio.Future[None]) -> None:
        for stream in streams:
            if self._held.get(stream) is token:
                del self._held[stream]
        if not token.done():
            token.set_result(None)

    @contextlib.asynccontextmanager
    async def holding(self, streams: Collection[UUID]) -> AsyncIterator[None]:
        """Hold `streams`, waiting for whoever holds any of them (for tests and simple callers)."""
        while isinstance(claimed := self.claim(streams), list):
            await asyncio.wait(claimed)
        try:
            yield
        finally:
            self.release(streams, claimed)


class IngestionCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner
        self._claims = KeyClaims()

    async def ingest(self, caller: Caller, *, kind: JobKind, received: int,
                     records: Sequence[tuple[int, CanonicalRecord]], rejected: Sequence[RejectedRecord] = (),
                     source: str | None = None, connector_id: str | None = None, job_stream: UUID | None = None
                     ) -> Result:
        """Apply the accepted `records` (index in the push, record) to their issues, recording the job.

        `job_stream` names the job's stream (an inbound delivery's, derived from connector + delivery id): when it
        already holds events, the push was ingested before and nothing is appended (`replayed(result)`); two at once
        conflict on the job's version 1 and the loser's retry finds the winner's job."""
        result, _ = await self._ingest(caller, kind=kind, received=received, records=records, rejected=rejected,
                                       source=source, connector_id=connector_id, job_stream=job_stream)
        return result

    async def exists(self, job_stream: UUID) -> bool:
        """Whether a job's stream holds anything (an inbound delivery's stream from before it was a job included)."""
        return bool(await self._runner.load(job_stream, DomainEvent))

    async def ingest_page(self, caller: Caller, *, received: int, records: Sequence[tuple[int, CanonicalRecord]],
                          rejected: Sequence[RejectedRecord], source: str, connector_id: str
                          ) -> tuple[IngestionJobCompleted, int]:
        """A connector's sync page, decided like any push (one decision, one append), except that a page that
        changes no issue appends nothing at all, not even its job: a scheduled sync re-reads the item at its
        mark every time. Answers the job as decided (its outcomes count the run) and the position (0: none)."""
        result, job = await self._ingest(caller, kind=JobKind.SOURCE, received=received, records=records,
                                         rejected=rejected, source=source, connector_id=connector_id, quiet=True)
        assert job is not None  # decided (no job_stream: never a replay)
        return job, result.position

    async def _ingest(self, caller: Caller, *, kind: JobKind, received: int,
                      records: Sequence[tuple[int, CanonicalRecord]], rejected: Sequence[RejectedRecord],
                      source: str | None, connector_id: str | None, job_stream: UUID | None = None,
                      quiet: bool = False) -> tuple[Result, IngestionJobCompleted | None]:
        streams = [None if record.external_id is None else
                   keyed_uuid(caller.workspace_id, "issue-source", record.source, record.external_id)
                   for _, record in records]
        keyed_streams = {stream for stream in streams if stream is not None}
        held: list[tuple[set[UUID], asyncio.Future[None]]] = []
        decided: list[IngestionJobCompleted] = []

        async def deciding(context: Context) -> Decision:
            """Decide on a fresh read; when a stream to change is another push's, wait for its append and decide
            again on a fresh read."""
            release()  # a retry after a conflict decides afresh
            decided.clear()
            if job_stream is not None and (done := await context.load(job_stream, DomainEvent)):
                return Decision(job_stream, done, ())
            while True:
                decision, changed = decide_on(context, await load(context, keyed_streams))
                claimed = self._claims.claim(changed)
                if not isinstance(claimed, list):
                    held.append((changed, claimed))
                    return decision
                await asyncio.wait(claimed)

        async def load(context: Context, wanted: set[UUID]) -> dict[UUID, Issue]:
            loaded = await context.load_many(wanted, IssueEvent)
            return {stream_id: cast(Issue, decide.project_issue(None, cast(list[AnyIssueEvent], history)))
                    for stream_id, history in loaded.items()}

        def decide_on(context: Context, issues: dict[UUID, Issue]) -> tuple[Decision, set[UUID]]:
            keyed = [Keyed(index, stream or context.new_uuid(), record)
                     for (index, record), stream in zip(records, streams, strict=True)]
            job_id = job_stream or context.new_uuid()
            decided_push = ingest(job_id=job_id, meta=context.meta, kind=kind, received=received, records=keyed,
                                  rejected=rejected, issues=issues, source=source, connector_id=connector_id,
                                  fold=job_stream is None and not quiet and kind is not JobKind.BATCH)
            events = decided_push.events
            decided[:] = [decided_push.job]
            changed = {event.originator_id for event in events if event.originator_id in keyed_streams}
            if quiet and events[0] is decided_push.job:  # only the job: nothing changed
                return Decision(job_id, (), ()), changed
            if events[-1] is not decided_push.job:  # folded: the answer (and a replay) reads the issue's stream
                return Decision(events[0].originator_id, (), events), changed
            return Decision(job_id, (), events), changed

        def release() -> None:
            while held:
                self._claims.release(*held.pop())

        try:
            result = await self._runner.run(caller, deciding, attempts=ATTEMPTS)
        finally:
            release()
        return result, decided[-1] if decided else None
