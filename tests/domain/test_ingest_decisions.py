"""The ingestion decision: records applied in order to their issues, nothing appended for what changed nothing."""

from __future__ import annotations

import uuid

import msgspec

from domain.events import DomainEvent
from domain.ingestion.events import IngestionJobCompleted, JobKind, Outcome, RejectedRecord, folded_job
from domain.ingestion.ingest import Keyed, ingest
from domain.ingestion.normalize import normalize_record
from domain.issues.events import IssueClosed, IssueDetailsEdited, IssueOpened, Severity, Status
from domain.issues.issue import Issue, project_issue
from tests.builders import ISSUE, T0, meta

JOB = uuid.UUID("01949a3c-0000-7000-8000-0000000000ff")
OTHER = uuid.UUID("01949a3c-0000-7000-8000-000000000002")


def keyed(index: int, stream: uuid.UUID, **raw: object) -> Keyed:
    return Keyed(index, stream, normalize_record({"source": "jira", **raw}))


def run(records: list[Keyed], issues: dict[uuid.UUID, Issue] | None = None,
        rejected: list[RejectedRecord] | None = None) -> tuple[list[object], IngestionJobCompleted]:
    decided = ingest(job_id=JOB, meta=meta(), kind=JobKind.BATCH, received=len(records) + len(rejected or []),
                     records=records, rejected=rejected or [], issues=issues or {})
    assert decided.events[-1] is decided.job
    return decided.events[:-1], decided.job


def single(record: Keyed, issues: dict[uuid.UUID, Issue] | None = None, *, connector_id: str | None = None
           ) -> tuple[list[DomainEvent], IngestionJobCompleted]:
    """A one-signal push that may fold its job into its issue event."""
    decided = ingest(job_id=JOB, meta=meta(), kind=JobKind.SOURCE, received=1, records=[record], rejected=[],
                     issues=issues or {}, source="custom_api", connector_id=connector_id, fold=True)
    return decided.events, decided.job


def test_a_key_repeated_in_one_push_updates_the_issue_its_first_record_opened() -> None:
    events, job = run([keyed(0, ISSUE, external_id="A-1", title="Disk full", severity="p3"),
                       keyed(1, OTHER, external_id="A-2", title="Other"),
                       keyed(2, ISSUE, external_id="A-1", title="Disk full", severity="p1"),
                       keyed(3, ISSUE, external_id="A-1", title="Disk full", severity="p1")])

    assert [(type(e).__name__, e.originator_id, e.originator_version) for e in events] == [  # type: ignore[attr-defined]
        ("IssueOpened", ISSUE, 1), ("IssueOpened", OTHER, 1), ("IssueDetailsEdited", ISSUE, 2)]
    assert isinstance(events[2], IssueDetailsEdited) and events[2].severity == Severity.CRITICAL
    assert [(i.index, i.outcome) for i in job.issues] == [(0, Outcome.CREATED), (1, Outcome.CREATED),
                                                          (2, Outcome.UPDATED), (3, Outcome.UNCHANGED)]


def test_a_resubmission_that_changes_nothing_appends_only_the_job() -> None:
    first, _ = run([keyed(0, ISSUE, external_id="A-1", title="t", body="b", team="x", metadata={"k": [1]})])
    current = project_issue(None, first)  # type: ignore[arg-type]
    assert current is not None

    again, job = run([keyed(0, ISSUE, external_id="A-1", title="t", body="b", team="x", metadata={"k": [1]}),
                      keyed(1, ISSUE, external_id="A-1", title="t")], {ISSUE: current})

    assert again == [] and [i.outcome for i in job.issues] == [Outcome.UNCHANGED, Outcome.UNCHANGED]


def test_new_issues_take_the_documented_defaults() -> None:
    events, _ = run([keyed(0, ISSUE, external_id="A-1")])

    opened = events[0]
    assert isinstance(opened, IssueOpened)
    assert (opened.title, opened.body, opened.severity, opened.metadata) == ("A-1", "", Severity.MEDIUM, {})


def test_a_closed_issue_is_not_changed_by_ingestion_and_the_record_is_rejected_in_order() -> None:
    opened = IssueOpened(**_env(1), title="t", source="jira", external_id="A-1")
    closed = project_issue(None, [opened, IssueClosed(**_env(2), from_status=Status.OPEN)])
    assert closed is not None

    events, job = run([keyed(2, ISSUE, external_id="A-1", title="changed")], {ISSUE: closed},
                      rejected=[RejectedRecord(index=0, reason="x"), RejectedRecord(index=3, reason="y")])

    assert events == []
    assert [(r.index, r.reason) for r in job.rejected] == [(0, "x"), (2, "a closed issue changes only through reopen"),
                                                           (3, "y")]


def test_a_one_signal_push_that_opens_its_issue_records_its_job_on_the_issue_event() -> None:
    events, job = single(keyed(0, ISSUE, external_id="A-1", title="Disk full"), connector_id="con_x")

    (opened,) = events
    assert isinstance(opened, IssueOpened) and opened.ingested_by is not msgspec.UNSET
    assert folded_job(opened) == job  # the read model and `issue.ingested` read exactly the job decided
    assert (job.kind, job.source, job.connector_id, job.received) == (JobKind.SOURCE, "custom_api", "con_x", 1)
    assert [(i.index, i.outcome, i.source, i.external_id) for i in job.issues] == [
        (0, Outcome.CREATED, "jira", "A-1")]


def test_a_one_signal_push_that_changes_its_issue_records_its_job_on_the_edit() -> None:
    first, _ = single(keyed(0, ISSUE, external_id="A-1", title="t"))
    current = project_issue(None, first)  # type: ignore[arg-type]

    events, job = single(keyed(0, ISSUE, external_id="A-1", title="changed"), {ISSUE: current})  # type: ignore[dict-item]

    (edited,) = events
    assert isinstance(edited, IssueDetailsEdited) and edited.title == "changed"
    assert folded_job(edited) == job and job.issues[0].outcome == Outcome.UPDATED


def test_a_push_that_changes_nothing_or_more_than_one_issue_keeps_the_job_event() -> None:
    first, _ = single(keyed(0, ISSUE, external_id="A-1", title="t"))
    current = project_issue(None, first)  # type: ignore[arg-type]

    unchanged, job = single(keyed(0, ISSUE, external_id="A-1", title="t"), {ISSUE: current})  # type: ignore[dict-item]
    assert unchanged == [job]
    two = ingest(job_id=JOB, meta=meta(), kind=JobKind.EVENT, received=2, rejected=[], issues={}, fold=True,
                 records=[keyed(0, ISSUE, external_id="A-1"), keyed(1, OTHER, external_id="A-2")])
    assert two.events[-1] is two.job and all(folded_job(event) is None for event in two.events)
    not_folded = ingest(job_id=JOB, meta=meta(), kind=JobKind.EVENT, received=1, rejected=[], issues={},
                        records=[keyed(0, ISSUE, external_id="A-1")])
    assert not_folded.events[-1] is not_folded.job and folded_job(not_folded.events[0]) is None


def _env(version: int) -> dict[str, object]:
    from domain.events import envelope

    return dict(envelope(meta(T0), ISSUE, version))
