"""Ingestion commands: a whole push (one signal, a batch of up to 500, a provider payload) is ONE decision.

Every record's issue is loaded in one read (keyed by workspace + source + external_id, the stream
`IssueCommands.open_issue` uses too), decided in memory, and appended with the job's event in one transaction
through the runner (whose group committer may share it with other requests). When another writer appended to
one of those issues first, the runner decides the whole push again on a fresh load, so a race between API
processes ends with one issue per key and every record applied once.
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
from domain.ingestion.events import IngestionJobCompleted, JobKind, RejectedRecord
from domain.ingestion.ingest import Keyed, ingest
from domain.ingestion.normalize import CanonicalRecord
from domain.issues import issue as decide
from domain.issues.events import AnyIssueEvent, IssueEvent
from domain.issues.issue import Issue

ATTEMPTS = 10
"""A push touches many issues, so it meets concurrent writers more often than a one-issue command."""


def job_of(result: Result) -> IngestionJobCompleted:
    """The job event an ingestion command appended (or, replayed, had appended)."""
    event = result.stream[-1]
    assert isinstance(event, IngestionJobCompleted)
    return event


class KeyClaims:
    """The issue streams this process's pushes are deciding or appending: a push waits until none of its streams is
    another push's, then holds them until its append is answered. So pushes sharing issues never race within one
    process (a race would re-decide the whole push); pushes of other issues still decide and append concurrently
    (and share group commits). Across processes the runner's retry on conflict remains."""

    def __init__(self) -> None:
        self._held: dict[UUID, asyncio.Future[None]] = {}

    @contextlib.asynccontextmanager
    async def holding(self, streams: Collection[UUID]) -> AsyncIterator[None]:
        while busy := {id(f): f for f in (self._held.get(stream) for stream in streams) if f is not None}:
            await asyncio.wait(list(busy.values()))
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for stream in streams:  # no await since the check: claiming them all is atomic on the event loop
            self._held[stream] = mine
        try:
            yield
        finally:
            for stream in streams:
                if self._held.get(stream) is mine:
                    del self._held[stream]
            mine.set_result(None)


class IngestionCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner
        self._claims = KeyClaims()

    async def ingest(self, caller: Caller, *, kind: JobKind, received: int,
                     records: Sequence[tuple[int, CanonicalRecord]], rejected: Sequence[RejectedRecord] = (),
                     source: str | None = None, connector_id: str | None = None) -> Result:
        """Apply the accepted `records` (index in the push, record) to their issues, recording the job."""
        streams = [None if record.external_id is None else
                   keyed_uuid(caller.workspace_id, "issue-source", record.source, record.external_id)
                   for _, record in records]
        keyed_streams = {stream for stream in streams if stream is not None}

        async def deciding(context: Context) -> Decision:
            keyed = [Keyed(index, stream or context.new_uuid(), record)
                     for (index, record), stream in zip(records, streams, strict=True)]
            loaded = await context.load_many(keyed_streams, IssueEvent)
            issues = {stream_id: cast(Issue, decide.project_issue(None, cast(list[AnyIssueEvent], history)))
                      for stream_id, history in loaded.items()}
            job_id = context.new_uuid()
            events = ingest(job_id=job_id, meta=context.meta, kind=kind, received=received, records=keyed,
                            rejected=rejected, issues=issues, source=source, connector_id=connector_id)
            return Decision(job_id, (), events)

        async with self._claims.holding(keyed_streams):
            return await self._runner.run(caller, deciding, attempts=ATTEMPTS)
