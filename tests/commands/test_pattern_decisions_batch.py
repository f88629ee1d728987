"""The detector's decisions of one batch go into one transaction: each issue once, with its latest analysis."""

from __future__ import annotations

from commands.patterns import one_per_issue
from domain.issues.events import Stage
from domain.patterns.detector import Detector
from tests.domain.test_pattern_analysis import opened
from tests.domain.test_pattern_detector import iss


def test_one_transaction_records_each_issue_once_with_its_latest_analysis() -> None:
    detector = Detector()
    batch = [decision for n in range(1, 6) for decision in detector.observe(opened(n, days=n / 10))]
    assert len(batch) > 5  # refreshes of earlier members came with the later issues

    merged = one_per_issue(batch)

    assert [d.issue_id for d in merged] == [iss(n) for n in range(1, 6)]  # one per issue, links in order
    assert not any(d.refresh for d in merged)
    first_refreshes = [d for d in batch if d.refresh and d.issue_id == iss(1)]
    assert merged[0].stage == Stage.IN_LOOP and merged[0].risk_score == first_refreshes[-1].risk_score
    assert merged[0].assignment.created  # still the link that founds the pattern
