"""The detector's fold over events: decisions per new issue, must-links, cannot-links, re-runs, and a replay
over the same history that decides nothing new."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from domain.events import Actor, ActorKind
from domain.ids import IssueId, PatternId, WorkspaceId, render
from domain.issues.events import IssueDetailsEdited, IssueOpened, IssuePatternLinked, IssuePatternUnlinked
from domain.patterns.detector import DETECTOR_ACTOR, Decide, Detector
from domain.patterns.events import Fingerprint as Fp
from domain.patterns.events import IssueReanalysisRequested, PatternDetected, PatternMerged
from domain.workspace_settings.events import AiSettingsUpdated

WS = WorkspaceId("ws_test")
USER = Actor(kind=ActorKind.USER, id="usr_1")
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _env(stream: uuid.UUID, version: int, actor: Actor = USER) -> dict[str, object]:
    return {"originator_id": stream, "originator_version": version, "occurred_at": T0, "workspace_id": WS,
            "actor": actor}


def opened(n: int, title: str, **metadata: object) -> IssueOpened:
    return IssueOpened(**_env(uuid.UUID(int=n), 1), title=title, metadata=dict(metadata))  # type: ignore[arg-type]


def links(detector: Detector, event: object) -> list[Decide]:
    """The detector's link decisions for an event (without the members' refreshed analyses that come after)."""
    return [decision for decision in detector.observe(event) if not decision.refresh]


def pid(key: str) -> PatternId:
    return PatternId(render("pat", uuid.uuid5(uuid.NAMESPACE_URL, key)))


def detected(key: str) -> PatternDetected:
    return PatternDetected(**_env(uuid.uuid5(uuid.NAMESPACE_URL, key), 1, DETECTOR_ACTOR),  # type: ignore[arg-type]
                           name=key, fingerprint=Fp(error_signature="x", hash="h"), template="t",
                           founding_issue_id=IssueId(key))


def iss(n: int) -> str:
    return render("iss", uuid.UUID(int=n))


def test_each_new_issue_gets_one_decision_with_its_explanation() -> None:
    detector = Detector()
    [first] = links(detector, opened(1, "Payment timeout after 30s for order 17", service="checkout"))
    [second] = links(detector, opened(2, "Payment timeout after 12s for order 99", service="checkout"))
    assert first.pattern_key == iss(1) and first.assignment.created
    assert second.pattern_key == iss(1) and second.assignment.method == "fingerprint"
    assert second.similar and second.similar[0][0] == iss(1) and 0 < second.similar[0][1] <= 1
    assert first.service == "checkout" and first.severity == "medium"


def test_a_merge_event_is_remembered_and_a_user_unlink_regroups_elsewhere() -> None:
    detector = Detector()
    detector.observe(opened(1, "queue overflow in ingest"))
    detector.observe(opened(2, "backpressure stall in ingest stage"))
    detector.observe(detected(iss(1)))
    detector.observe(detected(iss(2)))
    detector.observe(PatternMerged(**_env(uuid.uuid5(uuid.NAMESPACE_URL, iss(2)), 2),  # type: ignore[arg-type]
                                   into_pattern_id=pid(iss(1))))
    [joined] = links(detector, opened(3, "backpressure stall in ingest stage"))
    assert joined.pattern_key == iss(1)
    detector.observe(IssuePatternLinked(**_env(uuid.UUID(int=3), 2, DETECTOR_ACTOR),  # type: ignore[arg-type]
                                        pattern_id=pid(iss(1))))

    [regrouped] = links(detector, IssuePatternUnlinked(**_env(uuid.UUID(int=3), 3),  # type: ignore[arg-type]
                                                        pattern_id=pid(iss(1))))
    assert regrouped.pattern_key not in (iss(1), iss(2)) and regrouped.unlinked_from_key == iss(1)
    assert detector.pattern_of(WS, iss(3)) == regrouped.pattern_key


def test_a_reanalysis_moves_nothing_when_the_answer_is_the_same() -> None:
    detector = Detector()
    detector.observe(opened(1, "disk full on /data"))
    request = IssueReanalysisRequested(**_env(uuid.UUID(int=99), 1), issue_id=IssueId(iss(1)))  # type: ignore[arg-type]
    assert detector.observe(request) == []
    assert detector.pattern_of(WS, iss(1)) == iss(1)


def test_replaying_the_same_events_gives_the_same_decisions() -> None:
    titles = [f"worker {i % 3} failed job {i}" for i in range(30)] + [f"slow query took {i}ms" for i in range(30)]
    events = [opened(i, title, service="api") for i, title in enumerate(titles)]

    def run() -> list[Decide]:
        detector = Detector()
        return [decision for event in events for decision in detector.observe(event)]

    first, second = run(), run()
    assert first == second
    assert len({d.pattern_key for d in first}) == 2


def test_a_changed_issue_keeps_its_pattern_until_a_reanalysis_regroups_it() -> None:
    detector = Detector()
    detector.observe(opened(1, "Payment timeout after 30s for order 17", service="checkout"))
    detector.observe(opened(2, "Payment timeout after 12s for order 99", service="checkout"))
    edited = IssueDetailsEdited(**_env(uuid.UUID(int=2), 2), title="Disk full on /var/lib/postgresql")  # type: ignore[arg-type]

    assert detector.observe(edited) == []  # never moved silently
    assert detector.pattern_of(WS, iss(2)) == iss(1)

    request = IssueReanalysisRequested(**_env(uuid.UUID(int=98), 1), issue_id=IssueId(iss(2)))  # type: ignore[arg-type]
    [moved] = links(detector, request)  # asked for: grouped with what it says now
    assert moved.pattern_key != iss(1) and moved.unlinked_from_key == iss(1)


def test_a_reanalysis_that_keeps_the_issue_is_answered_once_even_across_a_replay() -> None:
    from domain.issues.events import IssueAnalyzed, IssueReanalysisStarted, Stage
    from domain.patterns.events import IssueLinkedToPattern
    from workers.pattern_detector import replay

    first = opened(1, "disk full on /data")
    linked = IssueLinkedToPattern(**_env(uuid.uuid5(uuid.NAMESPACE_URL, iss(1)), 2, DETECTOR_ACTOR),  # type: ignore[arg-type]
                                  issue_id=IssueId(iss(1)), method="fingerprint", similarity=1.0, fingerprint="h",
                                  severity="medium", issue_opened_at=first.occurred_at)
    started = IssueReanalysisStarted(**_env(uuid.UUID(int=1), 3), tier="fast")  # type: ignore[arg-type]
    answered = IssueAnalyzed(**_env(uuid.UUID(int=1), 4, DETECTOR_ACTOR), stage=Stage.PATTERN_FOUND,  # type: ignore[arg-type]
                             risk_score=40)

    live = Detector()
    live.observe(first)
    [reaffirm] = links(live, started)
    assert reaffirm.reaffirm and reaffirm.pattern_key == iss(1) and reaffirm.unlinked_from_key is None

    history = [(1, first), (2, linked), (3, started)]
    [pending] = replay(Detector(), history)  # restarted before the answer was stored: answer it
    assert pending.reaffirm and pending.issue_id == iss(1)
    assert replay(Detector(), [*history, (4, answered)]) == []  # answered: nothing again


def ai(version: int, workspace: WorkspaceId = WS, **changes: object) -> AiSettingsUpdated:
    env = {**_env(uuid.uuid5(uuid.NAMESPACE_URL, f"settings/{workspace}"), version), "workspace_id": workspace}
    return AiSettingsUpdated(**env, **changes)  # type: ignore[arg-type]


PAYMENT = "Payment timeout after {}s for order {}"


def test_without_auto_link_the_same_failure_founds_a_pattern_that_suggests_the_first() -> None:
    detector = Detector()
    detector.observe(ai(1, auto_link=False))

    [first] = links(detector, opened(1, PAYMENT.format(30, 17), service="checkout"))
    [second] = links(detector, opened(2, PAYMENT.format(12, 99), service="checkout"))

    assert first.pattern_key == iss(1) and first.suggested_key is None
    assert second.pattern_key == iss(2) and second.assignment.created
    assert second.suggested_key == iss(1) and second.assignment.suggested_similarity == 1.0


def test_without_auto_link_a_client_fingerprint_still_links() -> None:
    detector = Detector()
    detector.observe(ai(1, auto_link=False))

    detector.observe(opened(1, "disk full on node", fingerprint="fp-1"))
    [second] = links(detector, opened(2, "a different title", fingerprint="fp-1"))

    assert second.pattern_key == iss(1) and second.assignment.method == "client_fingerprint"


def test_auto_link_back_on_links_later_issues_and_moves_none() -> None:
    detector = Detector()
    detector.observe(opened(1, PAYMENT.format(30, 17), service="checkout"))
    detector.observe(ai(1, auto_link=False))
    detector.observe(opened(2, PAYMENT.format(12, 99), service="checkout"))

    assert detector.observe(ai(2, auto_link=True)) == []
    [third] = links(detector, opened(3, PAYMENT.format(5, 7), service="checkout"))

    assert third.pattern_key == iss(1) and third.assignment.method == "fingerprint"
    assert detector.pattern_of(WS, iss(2)) == iss(2)


def test_a_reanalysis_without_auto_link_keeps_the_issue_where_it_is() -> None:
    detector = Detector()
    detector.observe(opened(1, PAYMENT.format(30, 17), service="checkout"))
    detector.observe(ai(1, auto_link=False))
    detector.observe(opened(2, PAYMENT.format(12, 99), service="checkout"))
    request = IssueReanalysisRequested(**_env(uuid.UUID(int=97), 1), issue_id=IssueId(iss(2)))  # type: ignore[arg-type]

    assert detector.observe(request) == []
    assert detector.pattern_of(WS, iss(2)) == iss(2)

    detector.observe(ai(2, auto_link=True))
    [moved] = links(detector, request)  # asked for, with auto-link on: it joins the pattern it matches
    assert moved.pattern_key == iss(1) and moved.unlinked_from_key == iss(2)


def test_an_automatic_link_needs_the_workspace_confidence_threshold() -> None:
    detector = Detector()
    detector.observe(ai(1, confidence_threshold=0.9))
    detector.observe(opened(1, "Invalid user alice from 10.0.0.1 on gateway port", service="ssh"))

    [near] = links(detector, opened(2, "Invalid user bob from 10.0.0.2 on gateway port", service="ssh"))
    [same] = links(detector, opened(3, "Invalid user alice from 10.0.0.9 on gateway port", service="ssh"))

    assert near.pattern_key == iss(2) and near.suggested_key == iss(1)
    assert near.assignment.suggested_similarity == 0.875
    assert same.pattern_key == iss(1) and same.assignment.similarity == 1.0


def test_default_ai_settings_group_as_no_settings_at_all() -> None:
    titles = [f"worker {i % 3} failed job {i}" for i in range(20)] + [
        "Invalid user alice from 10.0.0.1 on gateway port", "Invalid user bob from 10.0.0.2 on gateway port",
        "cache miss for key in region", "cache hit for value in region",
        "Invalid user carol on gateway", "Invalid user dave on gateway"]  # 4 of 5 tokens: exactly 0.8
    events = [opened(i, title, service="api") for i, title in enumerate(titles)]

    def run(*settings: AiSettingsUpdated) -> list[Decide]:
        detector = Detector()
        return [decision for event in (*settings, *events) for decision in links(detector, event)]

    grouped = run()
    assert grouped[-1].pattern_key == grouped[-2].pattern_key and grouped[-1].assignment.similarity == 0.8
    assert run(ai(1, auto_link=True, confidence_threshold=0.8)) == grouped


def test_ai_settings_apply_to_their_own_workspace_only() -> None:
    detector = Detector()
    detector.observe(ai(1, WorkspaceId("ws_other"), auto_link=False))
    detector.observe(opened(1, PAYMENT.format(30, 17), service="checkout"))

    [second] = links(detector, opened(2, PAYMENT.format(12, 99), service="checkout"))

    assert second.pattern_key == iss(1)
