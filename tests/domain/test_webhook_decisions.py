"""Outbound webhook endpoint decisions and the event → public type table (pure: no I/O)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec
import pytest

from api.webhooks.schemas import WebhookEventType
from domain.connectors.events import ConnectorPaused, ConnectorSynced, ConnectorSyncFailed, Counts
from domain.errors import InvalidValue
from domain.ids import IssueId, PatternId, render
from domain.ingestion.events import (
    IngestedIssue,
    IngestionJobCompleted,
    JobKind,
    Outcome,
    RejectedRecord,
    carrying,
)
from domain.issues.events import IssueClosed, IssueCommented, IssueOpened, IssueStatusChanged, Status
from domain.patterns.events import (
    Fingerprint,
    IssueLinkedToPattern,
    IssueReanalysisRequested,
    IssueUnlinkedFromPattern,
    PatternDetected,
    PatternMerged,
    PatternStatus,
    PatternUpdated,
)
from domain.predictions.events import AlertFired, PredictionGenerated
from domain.recommendations.events import RecommendationCreated, RecommendationDismissed, RecommendationVerified
from domain.webhooks import endpoint as decide
from domain.webhooks.endpoint import EVENT_TYPES, EndpointEdit, WebhookEndpoint
from domain.webhooks.events import EndpointStatus, WebhookEndpointDisabled, WebhookEndpointUpdated
from domain.webhooks.outbound import LIVE_TYPES, NOT_YET_LIVE, RULES, connector_of, delivered_as, public_types
from tests.builders import ISSUE, T0, T1, meta, opened

JOB = uuid.UUID("01949a3c-0000-7000-8000-0000000000ff")

WEBHOOK = uuid.UUID("019a0c1e-0000-7000-8000-0000000000cc")


def created(event_types: list[str] | None = None) -> WebhookEndpoint:
    event = decide.create_endpoint(stream_id=WEBHOOK, meta=meta(T0), url="https://hooks.example.com/x",
                                   event_types=event_types or ["issue.resolved", "issue.created", "issue.created"],
                                   connector_id=None, description="", secret_ciphertext="v1.sealed")
    endpoint = decide.project_endpoint(None, [event])
    assert endpoint is not None
    return endpoint


def test_event_types_are_checked_deduplicated_and_kept_in_catalogue_order() -> None:
    with pytest.raises(InvalidValue, match=r"unknown event type 'issue\.eaten'"):
        decide.clean_event_types(["issue.created", "issue.eaten"])
    with pytest.raises(InvalidValue, match="at least one"):
        decide.clean_event_types([])

    assert created().event_types == ("issue.created", "issue.resolved")


def test_the_api_enum_is_exactly_the_documented_catalogue() -> None:
    assert [member.value for member in WebhookEventType] == list(EVENT_TYPES)
    assert len(EVENT_TYPES) == 12 and set(EVENT_TYPES) >= LIVE_TYPES
    assert set(EVENT_TYPES) == LIVE_TYPES | NOT_YET_LIVE and not LIVE_TYPES & NOT_YET_LIVE


def test_an_update_records_only_what_changes_and_nothing_when_nothing_does() -> None:
    endpoint = created()

    same = decide.update_endpoint(endpoint, EndpointEdit(url=endpoint.url, event_types=["issue.created",
                                                                                       "issue.resolved"]), meta(T1))
    (changed,) = decide.update_endpoint(endpoint, EndpointEdit(description="ops", status=EndpointStatus.DISABLED),
                                        meta(T1))

    assert same == []
    assert isinstance(changed, WebhookEndpointUpdated) and changed.originator_version == 2
    assert changed.url is msgspec.UNSET and changed.description == "ops" and changed.status is EndpointStatus.DISABLED


def test_a_rotation_keeps_the_previous_secret_for_the_overlap() -> None:
    endpoint = created()
    rotated = decide.rotate_secret(endpoint, secret_ciphertext="v1.new", overlap=timedelta(hours=24), meta=meta(T1))
    after = decide.project_endpoint(endpoint, [rotated])

    assert rotated.previous_valid_until == T1 + timedelta(hours=24)
    assert after is not None and after.secret_ciphertext == "v1.new"
    assert after.previous_secret_ciphertext == "v1.sealed"


def test_only_an_active_endpoint_is_disabled_for_failures() -> None:
    endpoint = created()
    (disabled,) = decide.disable_for_failures(endpoint, failing_since=T0, reason="down", meta=meta(T1))
    after = decide.project_endpoint(endpoint, [disabled])

    assert isinstance(disabled, WebhookEndpointDisabled)
    assert after is not None and after.status is EndpointStatus.DISABLED
    assert decide.disable_for_failures(after, failing_since=T0, reason="down", meta=meta(T1)) == []


def test_issue_events_map_to_the_documented_public_types() -> None:
    def moved(from_status: Status, to_status: Status) -> tuple[str, ...]:
        return public_types(IssueStatusChanged(**_env(2), from_status=from_status, to_status=to_status))

    assert public_types(opened()) == ("issue.created",)
    assert moved(Status.OPEN, Status.IN_PROGRESS) == ("issue.updated",)
    assert moved(Status.IN_PROGRESS, Status.RESOLVED) == ("issue.updated", "issue.resolved")
    assert moved(Status.RESOLVED, Status.CLOSED) == ("issue.updated",)
    assert public_types(IssueClosed(**_env(2), from_status=Status.OPEN)) == ("issue.updated", "issue.resolved")
    assert public_types(IssueClosed(**_env(2), from_status=Status.RESOLVED)) == ("issue.updated",)
    assert public_types(IssueCommented(**_env(2), comment_id="cmt_01KV1PX3NR96XJRGD48NNHH431", body="x")) == ()


PATTERN_ISSUE = IssueId("iss_01KV1PX3NR96XJRGD48NNHH432")
OTHER_PATTERN = PatternId("pat_01KV1PX3NR96XJRGD48NNHH433")


def _link(method: str) -> IssueLinkedToPattern:
    return IssueLinkedToPattern(**_env(2), issue_id=PATTERN_ISSUE, method=method, similarity=0.9, fingerprint="f",
                                severity="high", issue_opened_at=T0)


def test_pattern_events_map_to_detected_and_updated_without_doubling_a_detection_or_a_merge() -> None:
    detected = PatternDetected(**_env(1), name="Timeouts", template="Timeout after <n>ms",
                               fingerprint=Fingerprint(error_signature="timeout", hash="h"),
                               founding_issue_id=PATTERN_ISSUE)

    assert public_types(detected) == ("pattern.detected",)
    assert public_types(PatternUpdated(**_env(3), status=PatternStatus.ACTIVE)) == ("pattern.updated",)
    assert public_types(PatternMerged(**_env(4), into_pattern_id=OTHER_PATTERN)) == ("pattern.updated",)
    assert public_types(_link("new")) == ()  # the founding issue: part of the detection
    assert public_types(_link("template")) == ("pattern.updated",)
    assert public_types(_link("merge")) == ("pattern.updated",)  # the merge target gains a member
    assert public_types(IssueUnlinkedFromPattern(**_env(3), issue_id=PATTERN_ISSUE, reason="unlinked")) == (
        "pattern.updated",)
    assert public_types(IssueUnlinkedFromPattern(**_env(3), issue_id=PATTERN_ISSUE, reason="merged")) == ()
    assert public_types(IssueReanalysisRequested(**_env(1), issue_id=PATTERN_ISSUE)) == ()


def test_recommendation_and_sync_events_map_and_sync_events_name_their_connector() -> None:
    created = RecommendationCreated(**_env(1), pattern_id=OTHER_PATTERN, playbook="p", title="t", fix_type="code_fix",
                                    impact="high", effort="low", overview="o", steps=[], rank=1,
                                    expected_loops_prevented=1.0)
    synced = ConnectorSynced(**_env(5), run_id="run_01KV1PX3NR96XJRGD48NNHH434", cursor={"since": "x"},
                             counts=Counts(fetched=2))
    failed = ConnectorSyncFailed(**_env(5), run_id="run_01KV1PX3NR96XJRGD48NNHH434", error="HTTP 503",
                                 consecutive_failures=1)

    assert public_types(created) == ("recommendation.created",)
    assert public_types(RecommendationVerified(**_env(4), pattern_id=OTHER_PATTERN)) == ("recommendation.verified",)
    assert public_types(RecommendationDismissed(**_env(2))) == ()
    assert public_types(synced) == ("sync.succeeded",) and public_types(failed) == ("sync.failed",)
    assert public_types(ConnectorPaused(**_env(2))) == ()
    assert connector_of(synced) == connector_of(failed) == render("con", ISSUE)
    assert connector_of(opened()) is None


def test_the_dispatcher_reads_the_categories_of_every_live_slice() -> None:
    """dispatch.CATEGORIES comes from RULES: a category missing here would never reach the delivery worker."""
    assert {cls.category for cls in RULES} == {"issue", "ingestion_job", "pattern", "prediction", "alert_rule",
                                               "recommendation", "connector"}


def test_ingestion_and_prediction_events_map_and_an_ingestion_names_its_connector() -> None:
    ingested = IngestionJobCompleted(**_env(1), kind=JobKind.BATCH, received=2,
                                     connector_id="con_01KV1PX3NR96XJRGD48NNHH435",
                                     issues=[IngestedIssue(index=0, issue_id="iss_01KV1PX3NR96XJRGD48NNHH432",
                                                           outcome=Outcome.CREATED, source="jira")])
    only_rejected = IngestionJobCompleted(**_env(1), kind=JobKind.BATCH, received=1,
                                          rejected=[RejectedRecord(index=0, reason="title: required")])
    at = T1
    generated = PredictionGenerated(**_env(1), pattern_id=OTHER_PATTERN, window_days=7, probability=0.8,
                                    predicted_at=at, expires_at=at, likely_trigger="t", impact="high",
                                    explanation="e", model_version="m", rate_per_day=1.0, sample_size=3,
                                    last_seen_at=at)
    fired = AlertFired(**_env(2), prediction_id="prd_01KV1PX3NR96XJRGD48NNHH436", pattern_id=OTHER_PATTERN,
                       pattern_name="p", probability=0.8, threshold=0.7, window_days=7)

    assert public_types(ingested) == ("issue.ingested",) and public_types(only_rejected) == ()
    assert connector_of(ingested) == "con_01KV1PX3NR96XJRGD48NNHH435" and connector_of(only_rejected) is None
    assert public_types(generated) == ("prediction.generated",)
    assert public_types(fired) == ("prediction.alert.fired",)


def test_an_issue_event_carrying_its_push_is_delivered_as_its_own_types_then_as_issue_ingested() -> None:
    job = IngestionJobCompleted(**{**_env(1), "originator_id": JOB}, kind=JobKind.EVENT, received=1,
                                connector_id="con_01KV1PX3NR96XJRGD48NNHH435",
                                issues=[IngestedIssue(index=0, issue_id=render("iss", ISSUE), outcome=Outcome.CREATED,
                                                      source="jira", external_id="A-1")])
    opened = carrying(IssueOpened(**_env(1), title="t", source="jira", external_id="A-1"), job)

    assert delivered_as(opened) == [(opened, "issue.created"), (job, "issue.ingested")]
    assert connector_of(job) == "con_01KV1PX3NR96XJRGD48NNHH435" and connector_of(opened) is None
    plain = IssueOpened(**_env(1), title="t")
    assert delivered_as(plain) == [(plain, "issue.created")]


def _env(version: int):  # type: ignore[no-untyped-def]
    from domain.events import envelope

    return envelope(meta(T1), ISSUE, version)
