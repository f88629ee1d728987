"""The Issue aggregate's rules, as given/when/then over pure functions."""

from __future__ import annotations

import pytest

from domain.errors import InvalidTransition, InvalidValue
from domain.issues.events import (
    IssueClosed,
    IssueDetailsEdited,
    IssueReopened,
    IssueStatusChanged,
    Severity,
    Status,
)
from domain.issues.issue import (
    IssueEdit,
    change_status,
    close_issue,
    comment_on_issue,
    edit_issue,
    open_issue,
    project_issue,
    reopen_issue,
)
from tests.builders import ISSUE, T1, T2, meta, opened


def test_an_issue_opens_with_its_title_trimmed() -> None:
    event = open_issue(issue_id=ISSUE, meta=meta(), title="  Checkout fails  ")

    assert event.title == "Checkout fails"
    assert event.originator_version == 1


def test_a_blank_title_is_refused() -> None:
    with pytest.raises(InvalidValue) as refused:
        open_issue(issue_id=ISSUE, meta=meta(), title="   ")

    assert refused.value.field == "title"


def test_a_title_over_300_characters_is_refused() -> None:
    with pytest.raises(InvalidValue):
        open_issue(issue_id=ISSUE, meta=meta(), title="x" * 301)


def test_closing_records_the_status_it_left() -> None:
    issue = project_issue(None, [opened()])
    assert issue is not None

    events = close_issue(issue, meta(T1))

    assert events == [IssueClosed(**_env(2, T1), from_status=Status.OPEN)]


def test_closing_a_closed_issue_records_nothing() -> None:
    issue = project_issue(None, [opened(), *close_issue(_open(), meta(T1))])
    assert issue is not None

    assert close_issue(issue, meta(T2)) == []


def test_a_closed_issue_cannot_move_except_through_reopen() -> None:
    closed = project_issue(None, [opened(), *close_issue(_open(), meta(T1))])
    assert closed is not None

    with pytest.raises(InvalidTransition):
        change_status(closed, Status.IN_PROGRESS, meta(T2))


def test_a_closed_issue_cannot_be_edited() -> None:
    closed = project_issue(None, [opened(), *close_issue(_open(), meta(T1))])
    assert closed is not None

    with pytest.raises(InvalidTransition):
        edit_issue(closed, IssueEdit(title="renamed"), meta(T2))


def test_reopening_a_closed_issue_clears_resolved_at() -> None:
    closed = project_issue(None, [opened(), *close_issue(_open(), meta(T1))])
    assert closed is not None and closed.resolved_at == T1

    events = reopen_issue(closed, meta(T2))
    reopened = project_issue(closed, events)

    assert events == [IssueReopened(**_env(3, T2), from_status=Status.CLOSED)]
    assert reopened is not None and reopened.status == Status.OPEN and reopened.resolved_at is None


def test_setting_the_current_status_again_records_nothing() -> None:
    assert change_status(_open(), Status.OPEN, meta()) == []


def test_any_status_may_follow_any_other_before_closing() -> None:
    resolved = project_issue(_open(), change_status(_open(), Status.RESOLVED, meta(T1)))
    assert resolved is not None and resolved.resolved_at == T1

    events = change_status(resolved, Status.IN_PROGRESS, meta(T2))

    assert events == [IssueStatusChanged(**_env(3, T2), from_status=Status.RESOLVED, to_status=Status.IN_PROGRESS)]


def test_an_edit_records_only_the_fields_that_changed() -> None:
    events = edit_issue(_open(), IssueEdit(title="Payment gateway timeout", severity=Severity.HIGH), meta(T1))

    assert events == [IssueDetailsEdited(**_env(2, T1), severity=Severity.HIGH)]


def test_an_edit_and_a_status_change_get_consecutive_versions() -> None:
    events = edit_issue(_open(), IssueEdit(team="payments", status=Status.CLOSED), meta(T1))

    assert [e.originator_version for e in events] == [2, 3]
    assert isinstance(events[1], IssueClosed)


def test_a_blank_comment_is_refused() -> None:
    with pytest.raises(InvalidValue):
        comment_on_issue(_open(), comment_id="cmt_1", body="  ", meta=meta())  # type: ignore[arg-type]


def _open():  # type: ignore[no-untyped-def]
    issue = project_issue(None, [opened()])
    assert issue is not None
    return issue


def _env(version: int, at):  # type: ignore[no-untyped-def]
    from domain.events import envelope

    return envelope(meta(at), ISSUE, version)
