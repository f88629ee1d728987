"""Ingestion commands: a whole push (one signal, a batch of up to 500, a provider payload) is ONE decision.

Every record's issue is loaded in one read (keyed by workspace + source + external_id, the stream
`IssueCommands.open_issue` uses too), decided in memory, and appended with the job's event in one transaction
through the runner (whose group committer may share it with other requests). When another writer appended to
one of those issues first, the runner decides the whole push again on a fresh load, so a race between API
processes ends with one issue per key and every record applied once.
"""

from __future__ import annotations

from collections.abc import Sequence
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


class IngestionCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    async def ingest(self, caller: Caller, *, kind: JobKind, received: int,
                     records: Sequence[tuple[int, CanonicalRecord]], rejected: Sequence[RejectedRecord] = (),
                     source: str | None = None, connector_id: str | None = None) -> Result:
        """Apply the accepted `records` (index in the push, record) to their issues, recording the job."""

        async def deciding(context: Context) -> Decision:
            keyed = [Keyed(index, _stream_of(caller, record, context), record) for index, record in records]
            loaded = await context.load_many({k.stream_id for k in keyed if k.record.external_id is not None},
                                             IssueEvent)
            issues = {stream_id: cast(Issue, decide.project_issue(None, cast(list[AnyIssueEvent], history)))
                      for stream_id, history in loaded.items()}
            job_id = context.new_uuid()
            events = ingest(job_id=job_id, meta=context.meta, kind=kind, received=received, records=keyed,
                            rejected=rejected, issues=issues, source=source, connector_id=connector_id)
            return Decision(job_id, (), events)

        return await self._runner.run(caller, deciding, attempts=ATTEMPTS)


def _stream_of(caller: Caller, record: CanonicalRecord, context: Context) -> UUID:
    if record.external_id is None:
        return context.new_uuid()
    return keyed_uuid(caller.workspace_id, "issue-source", record.source, record.external_id)
