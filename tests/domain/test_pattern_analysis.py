"""Members' analyses stay current as their pattern grows: the first issue enters the loop when a second comes
within the recurrence window, risk follows the pattern's count, the work per arrival is bounded, and a replay
re-decides a refresh only with the link that caused it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from domain.ids import IssueId, parse
from domain.issues.events import IssueAnalyzed, IssueOpened, IssuePatternLinked, Severity, Stage
from domain.patterns.analysis import CHECKED_PER_ARRIVAL
from domain.patterns.detector import DETECTOR_ACTOR, Decide, Detector
from domain.patterns.events import IssueLinkedToPattern
from tests.domain.test_pattern_detector import T0, USER, _env, detected, iss, pid
from workers.pattern_detector import replay

TITLE = "Payment timeout after {}s for order {}"


def opened(n: int, *, days: float = 0, service: str = "checkout", severity: str = "medium") -> IssueOpened:
    return IssueOpened(**_env(uuid.UUID(int=n), 1), title=TITLE.format(n % 50 + 1, n),  # type: ignore[arg-type]
                       metadata={"service": service}, severity=Severity(severity),
                       source_created_at=T0 + timedelta(days=days))


def answered(decision: Decide, version: int) -> IssueAnalyzed:
    """The `IssueAnalyzed` the command records for a decision (folded back into the detector)."""
    stream = parse("iss", decision.issue_id)
    assert stream is not None
    return IssueAnalyzed(**_env(stream, version, DETECTOR_ACTOR), stage=decision.stage,  # type: ignore[arg-type]
                         risk_score=decision.risk_score)


def test_the_first_issue_enters_the_loop_when_a_second_comes_within_the_window() -> None:
    detector = Detector()
    [first] = detector.observe(opened(1))
    assert first.stage == Stage.PATTERN_FOUND and not first.refresh

    [second, refreshed] = detector.observe(opened(2, days=3))

    assert second.issue_id == iss(2) and second.stage == Stage.IN_LOOP and not second.refresh
    assert refreshed.issue_id == iss(1) and refreshed.refresh and refreshed.reaffirm
    assert refreshed.stage == Stage.IN_LOOP and refreshed.pattern_key == second.pattern_key == iss(1)
    assert refreshed.risk_score > first.risk_score
    assert "2 issues in the pattern" in refreshed.contributing_factors


def test_an_issue_outside_the_window_leaves_the_first_alone_in_stage() -> None:
    detector = Detector()
    detector.observe(opened(1))
    decisions = detector.observe(opened(2, days=45))
    assert [d.stage for d in decisions if d.issue_id == iss(2)] == [Stage.PATTERN_FOUND]
    assert all(d.stage == Stage.PATTERN_FOUND for d in decisions if d.refresh)


def test_risk_follows_the_pattern_and_the_work_per_arrival_is_bounded() -> None:
    detector = Detector()
    latest: dict[str, int] = {}
    counts = []
    for n in range(1, 301):
        decisions = detector.observe(opened(n, days=n / 100))
        counts.append(len(decisions))
        for version, decision in enumerate(decisions, start=2):
            latest[decision.issue_id] = decision.risk_score
            detector.observe(answered(decision, version))

    assert max(counts) <= 1 + 1 + CHECKED_PER_ARRIVAL
    assert latest[iss(1)] >= latest[iss(300)] - 2  # the first issue's risk caught up with the pattern's
    assert sum(counts[250:]) == 50  # risk saturates (50 issues, one service): no refresh any more


def test_a_member_moved_by_a_user_is_not_refreshed_into_its_old_pattern() -> None:
    detector = Detector()
    detector.observe(opened(1))
    detector.observe(detected(iss(1)))
    detector.observe(IssueOpened(**_env(uuid.UUID(int=7), 1), title="disk full on /data"))  # type: ignore[arg-type]
    detector.observe(detected(iss(7)))
    detector.observe(IssuePatternLinked(**_env(uuid.UUID(int=1), 2, USER), pattern_id=pid(iss(7))))  # type: ignore[arg-type]

    decisions = detector.observe(opened(2, days=1))
    assert [d.issue_id for d in decisions] == [iss(2)]


def test_a_replay_re_decides_a_refresh_only_with_its_missing_link() -> None:
    first, second = opened(1), opened(2, days=1)
    live = Detector()
    [link1] = live.observe(first)
    link2, refresh = live.observe(second)

    def linked(decision: Decide, version: int) -> IssueLinkedToPattern:
        return IssueLinkedToPattern(**_env(uuid.uuid5(uuid.NAMESPACE_URL, decision.pattern_key), version,  # type: ignore[arg-type]
                                           DETECTOR_ACTOR), issue_id=IssueId(decision.issue_id),
                                    method=decision.assignment.method.value, similarity=1.0, fingerprint="h",
                                    severity="medium", issue_opened_at=decision.opened_at)

    recorded = [(1, first), (2, linked(link1, 1)), (3, answered(link1, 2)), (4, second)]
    assert replay(Detector(), recorded) == [link2, refresh]  # the crash lost both: both again
    done = [*recorded, (5, linked(link2, 2)), (6, answered(link2, 2)), (7, answered(refresh, 3))]
    assert replay(Detector(), done) == []

