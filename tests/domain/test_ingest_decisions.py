"""The ingestion decision: records applied in order to their issues, nothing appended for what changed nothing."""

from __future__ import annotations

import uuid

from domain.ingestion.events import IngestionJobCompleted, JobKind, Outcome, RejectedRecord
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
    events = ingest(job_id=JOB, meta=meta(), kind=JobKind.BATCH, received=len(records) + len(rejected or []),
                    records=records, rejected=rejected or [], issues=issues or {})
    job = events[-1]
    assert isinstance(job, IngestionJobCompleted)
    return events[:-1], job


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


def _env(version: int) -> dict[str, object]:
    from domain.events import envelope

    return dict(envelope(meta(T0), ISSUE, version))
