"""The issue row's `stage` as the pattern detector and a reanalysis move it (the fold the projector, a rebuild and
the API share)."""

from __future__ import annotations

from domain.events import envelope
from domain.ids import PatternId
from domain.issues.events import IssueAnalyzed, IssuePatternLinked, IssueReanalysisStarted, Stage
from projections.issues.view import fold
from tests.builders import ISSUE, meta, opened

PATTERN = PatternId("pat_01KV1PX3NR96XJRGD48NNHH431")


def test_a_reanalysis_is_analyzing_until_the_detector_answers() -> None:
    linked = fold(None, [opened(), IssuePatternLinked(**envelope(meta(), ISSUE, 2), pattern_id=PATTERN),
                         IssueAnalyzed(**envelope(meta(), ISSUE, 3), stage=Stage.PATTERN_FOUND, risk_score=40)])
    assert linked is not None and linked.stage == Stage.PATTERN_FOUND

    started = fold(linked, [IssueReanalysisStarted(**envelope(meta(), ISSUE, 4), tier="deep")])
    assert started is not None and started.stage == Stage.ANALYZING and started.pattern_id == PATTERN

    answered = fold(started, [IssueAnalyzed(**envelope(meta(), ISSUE, 5), stage=Stage.IN_LOOP, risk_score=55,
                                            root_cause="Recurring failure pattern: Payment gateway timeout")])
    assert answered is not None and answered.stage == Stage.IN_LOOP and answered.risk_score == 55
