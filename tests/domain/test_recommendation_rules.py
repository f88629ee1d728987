"""The knowledge base's matcher, the recommendation transitions, the proof window rule and the worker's fold."""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec
import pytest

from domain.errors import InvalidTransition, InvalidValue
from domain.events import envelope
from domain.ids import IssueId, PatternId, WorkspaceId, render
from domain.patterns.events import Fingerprint, IssueLinkedToPattern, PatternDetected, PatternStatus, PatternUpdated
from domain.predictions.events import PredictionGenerated, PredictionUpdated
from domain.recommendations import recommendation as rules
from domain.recommendations.events import RecommendationStatus as Status
from domain.recommendations.events import VerificationState
from domain.recommendations.knowledge import PLAYBOOKS, Impact, PatternFacts, expected_loops, match, rate_per_day
from domain.recommendations.recommender import Propose, Recommender, Reopen
from domain.workspace_settings.events import AiSettingsUpdated
from tests.builders import T0, WS, meta

PATTERN = PatternId("pat_01KV1PX3NR96XJRGD48NNHH431")
STREAM = uuid.UUID("01949a3c-0000-7000-8000-0000000000f1")


def facts(signature: str, template: str = "", count: int = 10, days: float = 10, **fields: str) -> PatternFacts:
    return PatternFacts(error_signature=signature, template=template, issue_count=count, first_seen_at=T0,
                        last_seen_at=T0 + timedelta(days=days), **fields)


@pytest.mark.parametrize(("signature", "template", "expected"), [
    ("TimeoutError", "Timeout calling payments-api after <*>ms", "timeout-budget"),
    ("PoolError", "Connection pool exhausted: no available connections", "connection-pool"),
    ("SSLError", "certificate has expired for api.example.com", "certificate-expiry"),
    ("OSError", "No space left on device: disk full on /var", "disk-full"),
    ("OOMKilled", "container killed: out of memory", "out-of-memory"),
    ("HTTP 429", "Too many requests from the billing client", "rate-limiting"),
    ("AssertionError", "flaky test test_checkout fails intermittently in CI", "flaky-test"),
    ("HTTP 503", "upstream unavailable: connection refused", "dependency-outage"),
    ("ReleaseError", "error rate regression after deploy of version 4.2", "deploy-regression"),
    ("DeadlockDetected", "deadlock detected while updating orders", "database-deadlock"),
])
def test_the_matcher_picks_the_playbook_for_the_failure_mode(signature: str, template: str, expected: str) -> None:
    found = match(facts(signature, template))

    assert expected in [proposal.playbook.key for proposal in found]
    assert [proposal.rank for proposal in found] == list(range(1, len(found) + 1))


def test_ranking_follows_expected_loops_prevented_then_effort() -> None:
    found = match(facts("TimeoutError", "Timeout calling payments-api"))

    assert [p.playbook.key for p in found] == ["timeout-budget", "timeout-alerting"]
    assert found[0].expected_loops_prevented > found[1].expected_loops_prevented


def test_an_unknown_failure_gets_the_generic_runbook_only() -> None:
    found = match(facts("WeirdError", "the flux capacitor sparkled"))

    assert [p.playbook.key for p in found] == ["generic-runbook"]


def test_expected_loops_come_from_the_observed_rate_over_the_horizon() -> None:
    steady = facts("TimeoutError", count=10, days=10)  # one a day

    assert rate_per_day(steady) == 1.0
    assert expected_loops(steady, Impact.HIGH) == 81.0  # 1/day x 90 days x 0.9
    assert rate_per_day(facts("x", count=3, days=0)) == 3.0  # a burst counts over one day at least
    assert rate_per_day(PatternFacts()) == 0.0


def test_a_predicted_rate_replaces_the_observed_one() -> None:
    steady = msgspec.structs.replace(facts("TimeoutError", count=10, days=10), predicted_rate_per_day=0.2)

    assert expected_loops(steady, Impact.HIGH) == 16.2  # 0.2/day x 90 days x 0.9, not the observed 1/day


def test_the_worker_sizes_proposals_by_the_patterns_latest_prediction() -> None:
    events = pattern_events(similarity=1.0)
    prediction = uuid.uuid4()
    generated = PredictionGenerated(
        **envelope(meta(T0), prediction, 1), pattern_id=render("pat", PATTERN_STREAM), window_days=7,
        probability=0.5, predicted_at=T0, expires_at=T0 + timedelta(days=7), likely_trigger="deploy", impact="high",
        explanation="", model_version="m", rate_per_day=0.5, sample_size=2, last_seen_at=T0)
    updated = PredictionUpdated(**envelope(meta(T0), prediction, 2), probability=0.6, impact="high",
                                explanation="", model_version="m", rate_per_day=0.25, sample_size=3,
                                last_seen_at=T0)
    recommender = Recommender()
    decided = [d for event in [events[0], generated, updated, *events[1:]] for d in recommender.observe(event)]

    assert len(decided) == 1 and isinstance(decided[0], Propose)
    best = decided[0].proposals[0]
    effectiveness = {"high": 0.9, "medium": 0.6, "quick_win": 0.4}[best.playbook.impact.value]
    assert best.expected_loops_prevented == round(0.25 * 90 * effectiveness, 1)


def test_every_playbook_is_complete() -> None:
    keys = [playbook.key for playbook in PLAYBOOKS]

    assert len(keys) == len(set(keys)) >= 10
    assert all(playbook.steps and playbook.overview and playbook.title for playbook in PLAYBOOKS)


def created() -> rules.Recommendation:
    proposal = match(facts("TimeoutError", "Timeout calling payments-api"))[0]
    state = rules.project_recommendation(None, rules.create(STREAM, PATTERN, proposal, meta(T0)))  # type: ignore[arg-type]
    assert state is not None
    return state


def moved(state: rules.Recommendation, to: Status) -> rules.Recommendation:
    after = rules.project_recommendation(state, rules.change_status(state, to, meta(T0)))  # type: ignore[arg-type]
    assert after is not None
    return after


def test_the_contract_transitions() -> None:
    pending = created()
    assert pending.status == Status.PENDING and pending.steps[0].id == "s1"

    started = moved(pending, Status.IN_PROGRESS)
    assert moved(started, Status.IMPLEMENTED).status == Status.IMPLEMENTED
    assert moved(pending, Status.IMPLEMENTED).status == Status.IMPLEMENTED
    assert rules.change_status(started, Status.IN_PROGRESS, meta(T0)) == []
    for final in (Status.IMPLEMENTED, Status.DISMISSED):
        with pytest.raises(InvalidTransition):
            rules.change_status(moved(pending, final), Status.PENDING, meta(T0))
    dismissed = rules.project_recommendation(pending, rules.dismiss(pending, " dup ", meta(T0)))  # type: ignore[arg-type]
    assert dismissed is not None and dismissed.status == Status.DISMISSED
    with pytest.raises(InvalidTransition):
        rules.dismiss(moved(pending, Status.IMPLEMENTED), None, meta(T0))


def test_steps_are_checked_once_and_unknown_steps_refused() -> None:
    state = created()
    checked = rules.project_recommendation(state, rules.complete_step(state, "s1", True, meta(T0)))  # type: ignore[arg-type]

    assert checked is not None and checked.completed_steps == {"s1"}
    assert rules.complete_step(checked, "s1", True, meta(T0)) == []
    assert len(rules.complete_step(checked, "s1", False, meta(T0))) == 1
    with pytest.raises(InvalidValue):
        rules.complete_step(state, "s99", True, meta(T0))


def test_the_proof_window_is_the_setting_unless_the_rate_is_too_low_to_tell() -> None:
    fast = rules.proof_window(30, 2.0)
    slow = rules.proof_window(30, 0.05)  # one every 20 days: 95% needs ln(20)/0.05 = 60 days
    rare = rules.proof_window(30, 0.001)

    assert fast.days == 30 and "workspace's proof window of 30 days" in fast.explanation
    assert slow.days == 60 and "longer than the workspace's proof window" in slow.explanation
    assert rare.days == 365 and "cannot be verified with confidence" in rare.explanation
    assert rules.proof_window(14, 0).days == 14


def watching(since_days: int = 0) -> rules.Recommendation:
    implemented = moved(created(), Status.IMPLEMENTED)
    window = rules.proof_window(30, 1.0)
    events = rules.start_verification(implemented, window, 1.0, meta(T0 + timedelta(days=since_days)))
    state = rules.project_recommendation(implemented, events)  # type: ignore[arg-type]
    assert state is not None and state.verification == VerificationState.WATCHING
    return state


def test_verification_passes_only_after_the_window() -> None:
    state = watching()

    assert rules.verify(state, meta(T0 + timedelta(days=29))) == []
    verified = rules.project_recommendation(state, rules.verify(state, meta(T0 + timedelta(days=30))))  # type: ignore[arg-type]
    assert verified is not None and verified.verification == VerificationState.VERIFIED


def test_a_matching_issue_after_the_fix_reopens_and_a_straggler_does_not() -> None:
    state = watching(since_days=5)
    issue = IssueId("iss_01KV1PX3NR96XJRGD48NNHH431")

    assert rules.reopen(state, issue, T0 + timedelta(days=4), meta(T0)) == []
    reopened = rules.project_recommendation(state, rules.reopen(state, issue, T0 + timedelta(days=6), meta(T0)))  # type: ignore[arg-type]
    assert reopened is not None and reopened.verification == VerificationState.REOPENED
    assert reopened.status == Status.IN_PROGRESS
    assert rules.verify(reopened, meta(T0 + timedelta(days=90))) == []


PATTERN_STREAM = uuid.UUID("01949a3c-0000-7000-8000-0000000000f2")


def pattern_events(similarity: float) -> list[object]:
    m = meta(T0)
    fingerprint = Fingerprint(service="checkout", error_signature="TimeoutError", hash="ab")
    events: list[object] = [PatternDetected(**envelope(m, PATTERN_STREAM, 1), name="Timeout", fingerprint=fingerprint,
                                            template="Timeout calling <*>", founding_issue_id=IssueId("iss_a"))]
    for version, issue in ((2, "iss_a"), (3, "iss_b")):
        events.append(IssueLinkedToPattern(**envelope(m, PATTERN_STREAM, version), issue_id=IssueId(issue),
                                           method="fingerprint", similarity=similarity, fingerprint="ab",
                                           severity="high", issue_opened_at=T0))
    events.append(PatternUpdated(**envelope(m, PATTERN_STREAM, 4), status=PatternStatus.ACTIVE))
    return events


def test_the_worker_proposes_once_a_recurring_pattern_reaches_the_threshold() -> None:
    recommender = Recommender()
    decided = [d for event in pattern_events(similarity=1.0) for d in recommender.observe(event)]

    assert len(decided) == 1 and isinstance(decided[0], Propose)
    assert decided[0].pattern_id == render("pat", PATTERN_STREAM) and decided[0].proposals[0].rank == 1


def test_below_the_threshold_it_waits_until_the_workspace_lowers_it() -> None:
    recommender = Recommender()
    decided = [d for event in pattern_events(similarity=0.6) for d in recommender.observe(event)]
    assert decided == []

    lowered = AiSettingsUpdated(**envelope(meta(T0), uuid.uuid4(), 1), confidence_threshold=0.5)
    assert [type(d) for d in recommender.observe(lowered)] == [Propose]
    other = msgspec.structs.replace(lowered, workspace_id=WorkspaceId("ws_other"))
    assert recommender.observe(other) == []


def test_the_worker_reopens_on_a_link_after_the_fix_and_lists_due_windows() -> None:
    recommender = Recommender()
    for event in pattern_events(similarity=1.0):
        recommender.observe(event)
    proposal = match(facts("TimeoutError"))[0]
    pattern_id = PatternId(render("pat", PATTERN_STREAM))
    stream: list[object] = list(rules.create(STREAM, pattern_id, proposal, meta(T0)))
    state = rules.project_recommendation(None, stream)  # type: ignore[arg-type]
    assert state is not None
    changed = rules.change_status(state, Status.IMPLEMENTED, meta(T0))
    state = rules.project_recommendation(state, changed)  # type: ignore[arg-type]
    assert state is not None
    stream += [*changed, *rules.start_verification(state, rules.proof_window(30, 1.0), 1.0, meta(T0))]
    for event in stream:
        assert recommender.observe(event) == []

    assert recommender.due(T0 + timedelta(days=29)) == []
    assert [s.id for s in recommender.due(T0 + timedelta(days=30))] == [STREAM]
    late = IssueLinkedToPattern(**envelope(meta(T0 + timedelta(days=2)), PATTERN_STREAM, 5),
                                issue_id=IssueId("iss_c"), method="fingerprint", similarity=1.0, fingerprint="ab",
                                severity="high", issue_opened_at=T0 + timedelta(days=2))
    decided = recommender.observe(late)
    assert decided == [Reopen(workspace_id=WS, recommendation_id=STREAM, issue_id=IssueId("iss_c"),
                              opened_at=T0 + timedelta(days=2))]


def test_stragglers_and_merged_issues_do_not_reopen() -> None:
    recommender = Recommender()
    for event in pattern_events(similarity=1.0):
        recommender.observe(event)
    proposal = match(facts("TimeoutError"))[0]
    pattern_id = PatternId(render("pat", PATTERN_STREAM))
    state = rules.project_recommendation(None, rules.create(STREAM, pattern_id, proposal, meta(T0)))  # type: ignore[arg-type]
    assert state is not None
    changed = rules.change_status(state, Status.IMPLEMENTED, meta(T0))
    implemented = rules.project_recommendation(state, changed)  # type: ignore[arg-type]
    assert implemented is not None
    fix = T0 + timedelta(days=1)
    for event in [*rules.create(STREAM, pattern_id, proposal, meta(T0)), *changed,
                  *rules.start_verification(implemented, rules.proof_window(30, 1.0), 1.0, meta(fix))]:
        recommender.observe(event)

    def link(version: int, issue: str, opened_days: int, method: str) -> IssueLinkedToPattern:
        return IssueLinkedToPattern(**envelope(meta(T0 + timedelta(days=3)), PATTERN_STREAM, version),
                                    issue_id=IssueId(issue), method=method, similarity=1.0, fingerprint="ab",
                                    severity="high", issue_opened_at=T0 + timedelta(days=opened_days))

    assert recommender.observe(link(5, "iss_late_ingested", 0, "fingerprint")) == []
    assert recommender.observe(link(6, "iss_merged", 2, "merge")) == []
    assert len(recommender.observe(link(7, "iss_new", 2, "template"))) == 1
