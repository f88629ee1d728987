"""One instance of every stored event type, as the golden files record it."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import msgspec

from domain.connectors.events import (
    ConnectorCreated,
    ConnectorDeleted,
    ConnectorPaused,
    ConnectorReconfigured,
    ConnectorResumed,
    ConnectorSigningSecretSet,
    ConnectorStatus,
    ConnectorSynced,
    ConnectorSyncFailed,
    Counts,
    InboundDeliveryReceived,
    RunKind,
    SyncRunFailed,
    SyncRunProgressed,
    SyncRunQueued,
    SyncRunStarted,
    SyncRunSucceeded,
)
from domain.credentials.events import (
    ApiTokenCreated,
    ApiTokenRevoked,
    ApiTokenRotated,
    ServiceAccountCreated,
    ServiceAccountDeleted,
    ServiceAccountUpdated,
    TokenKind,
)
from domain.events import envelope
from domain.identity.events import (
    InvitationAccepted,
    InvitationResent,
    InvitationRevoked,
    InvitationSent,
    MemberAdded,
    MemberReactivated,
    MemberRemoved,
    MemberRoleChanged,
    MemberSuspended,
    OrganizationOffboarded,
    OrganizationProvisioned,
    Plan,
    UserExternalIdentityLinked,
    UserProfileUpdated,
    UserRegistered,
    WorkspaceOffboarded,
    WorkspaceProvisioned,
)
from domain.identity.roles import Role
from domain.ids import IssueId, PatternId
from domain.ingestion.events import IngestedIssue, IngestionJobCompleted, JobKind, Outcome, RejectedRecord
from domain.issues.events import (
    IngestedBy,
    IssueAnalyzed,
    IssueAssigned,
    IssueClosed,
    IssueCommented,
    IssueDetailsEdited,
    IssueOpened,
    IssuePatternLinked,
    IssuePatternUnlinked,
    IssueReanalysisStarted,
    IssueReopened,
    IssueStatusChanged,
    Severity,
    Stage,
    Status,
)
from domain.mfa.events import TotpActivated, TotpEnrolled, TotpRemoved
from domain.notifications.events import EventChannels, NotificationPreferencesSet, PatternUnwatched, PatternWatched
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
from domain.predictions.events import (
    AlertFired,
    AlertRearmed,
    AlertRuleCreated,
    AlertRuleDeleted,
    AlertRuleUpdated,
    AlertThreshold,
    NotificationDismissed,
    NotificationRead,
    NotificationsReadAll,
    PredictionDismissed,
    PredictionExpired,
    PredictionFeedbackGiven,
    PredictionGenerated,
    PredictionUpdated,
)
from domain.recommendations.events import (
    RecommendationCreated,
    RecommendationDismissed,
    RecommendationPushed,
    RecommendationReopened,
    RecommendationStatus,
    RecommendationStatusChanged,
    RecommendationStepCompleted,
    RecommendationVerificationStarted,
    RecommendationVerified,
    Step,
)
from domain.sessions.events import SessionRefreshed, SessionRevoked, SessionStarted
from domain.webhooks.events import (
    EndpointStatus,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
    WebhookEndpointUpdated,
    WebhookPingRequested,
    WebhookRedeliveryRequested,
    WebhookSecretRotated,
)
from domain.workspace_settings.events import (
    AiSettingsUpdated,
    MfaRequirementChanged,
    OnboardingStep,
    OnboardingStepCompleted,
    RetentionSettingsUpdated,
    Theme,
    WorkspaceProfileUpdated,
    WorkspaceSlugClaimed,
)
from tests.builders import ISSUE, T0, meta

WORKSPACE_STREAM = UUID("0b4f7f6e-5d1c-5a8e-9c3b-2f1e0d9c8b7a")
USER_STREAM = UUID("6a1d2c3b-4e5f-5a6b-8c7d-9e0f1a2b3c4d")
TOKEN_STREAM = UUID("3c2b1a09-8f7e-5d6c-9b5a-4f3e2d1c0b0a")
SERVICE_ACCOUNT_STREAM = UUID("019a0c1e-0000-7000-8000-0000000000aa")
SETTINGS_STREAM = UUID("3c9e1f2a-7b4d-5e6f-8a1b-2c3d4e5f6a7b")
SLUG_CLAIM_STREAM = UUID("8d2e4f6a-1b3c-5d7e-9f0a-2b4c6d8e0f1a")
SESSION_STREAM = UUID("019a3c5e-7f10-7a2b-9c3d-4e5f6a7b8c9d")
MFA_STREAM = UUID("3c2b1a09-8f7e-5d6c-9b5a-4f3e2d1c0b9a")
HASH_1 = "a" * 64
HASH_2 = "b" * 64
INVITATION_STREAM = UUID("7c2e3d4f-5a6b-5c7d-8e9f-0a1b2c3d4e5f")
ORGANIZATION_STREAM = UUID("8d3f4e5a-6b7c-5d8e-9f0a-1b2c3d4e5f60")
PATTERN_STREAM = UUID("5e1a2b3c-4d5e-5f6a-8b7c-9d0e1f2a3b4c")
REANALYSIS_STREAM = UUID("6f2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d")
RECOMMENDATION_STREAM = UUID("7a3c4d5e-6f70-5b8c-9d0e-1f2a3b4c5d6e")
PREDICTION_STREAM = UUID("7a3c4d5e-6f70-5b8c-9dae-1f2a3b4c5d6e")
ALERT_RULE_STREAM = UUID("8b4d5e6f-7081-5c9d-8ebf-2a3b4c5d6e7f")
INBOX_STREAM = UUID("9c5e6f70-8192-5dae-9fc0-3b4c5d6e7f80")
WATCH_STREAM = UUID("ad6f7081-92a3-5ebf-80d1-4c5d6e7f8091")
PREFERENCES_STREAM = UUID("be708192-a3b4-5fc0-91e2-5d6e7f8091a2")
BOB = "usr_01KV1PX3NR96XJRGD48NNHH432"
CONNECTOR_STREAM = UUID("019a0c1e-0000-7000-8000-0000000000cc")
RUN_STREAM = UUID("019a0c1e-0000-7000-8000-0000000000dd")
RUN = "run_01KV1PX3NR96XJRGD48NNHH431"
DELIVERY_STREAM = UUID("019a0c1e-0000-7000-8000-0000000000ee")
CONNECTOR = "con_01KV1PX3NR96XJRGD48NNHH431"


def samples() -> list[object]:
    def env(version: int):  # type: ignore[no-untyped-def]
        return envelope(msgspec.structs.replace(meta(T0), client_ip="203.0.113.7"), ISSUE, version)

    return [
        IssueOpened(**env(1), title="Payment gateway timeout", body="p99 > 5s", severity=Severity.HIGH, source="jira",
                    external_id="JIRA-1042", team="payments", assignee_id="usr_01KV1PX3NR96XJRGD48NNHH431",
                    external_url="https://jira.example.com/JIRA-1042", metadata={"region": "eu"},
                    source_created_at=T0),
        IssueDetailsEdited(**env(2), title="Gateway timeout", body=None),
        IssueAssigned(**env(3), assignee_id=None),
        IssueStatusChanged(**env(4), from_status=Status.OPEN, to_status=Status.IN_PROGRESS),
        IssueClosed(**env(5), from_status=Status.IN_PROGRESS),
        IssueReopened(**env(6), from_status=Status.CLOSED),
        IssueCommented(**env(7), comment_id="cmt_01KV1PX3NR96XJRGD48NNHH431", body="seen again"),
        IssuePatternLinked(**env(8), pattern_id="pat_01KV1PX3NR96XJRGD48NNHH431"),
        IssuePatternUnlinked(**env(9), pattern_id="pat_01KV1PX3NR96XJRGD48NNHH431"),
        WorkspaceProvisioned(**envelope(meta(T0), WORKSPACE_STREAM, 1),
                             organization_id="org_01KV1PX3NNV29S67D9NT816VBS", organization_slug="local",
                             organization_name="Local development", slug="acme", name="Acme",
                             owner_user_id="usr_01KV1PX3NR96XJRGD48NNHH431"),
        MemberAdded(**envelope(meta(T0), WORKSPACE_STREAM, 2), user_id="usr_01KV1PX3NR96XJRGD48NNHH431",
                    role=Role.OWNER),
        UserRegistered(**envelope(meta(T0), USER_STREAM, 1), email="alice@example.com", name="alice"),
        *settings_samples(),
        UserExternalIdentityLinked(**envelope(meta(T0), USER_STREAM, 2), clerk_user_id="user_2abcDEF"),
        SessionStarted(**envelope(meta(T0), SESSION_STREAM, 1), user_id="usr_01KV1PX3NR96XJRGD48NNHH431",
                       refresh_hash=HASH_1, mfa=True),
        SessionRefreshed(**envelope(meta(T0), SESSION_STREAM, 2), previous_hash=HASH_1, refresh_hash=HASH_2),
        SessionRevoked(**envelope(meta(T0), SESSION_STREAM, 3), reason="refresh_token_reuse"),
        TotpEnrolled(**envelope(meta(T0), MFA_STREAM, 1), user_id="usr_01KV1PX3NR96XJRGD48NNHH431",
                     secret_ciphertext="v1.bm9uY2UtYW5kLWNpcGhlcnRleHQ="),
        TotpActivated(**envelope(meta(T0), MFA_STREAM, 2), user_id="usr_01KV1PX3NR96XJRGD48NNHH431"),
        TotpRemoved(**envelope(meta(T0), MFA_STREAM, 3), user_id="usr_01KV1PX3NR96XJRGD48NNHH431"),
        *_members_samples(),
        *credential_samples(),
        *webhook_samples(),
        *connector_samples(),
        *pattern_samples(),
        *recommendation_samples(),
        *prediction_samples(),
        *ingestion_samples(),
        *push_samples(),
        *watch_samples(),
        IssueReanalysisStarted(**envelope(meta(T0), ISSUE, 11), tier="balanced"),
    ]


def watch_samples() -> list[object]:
    """Pattern watches and notification preferences."""
    user = "usr_01KV1PX3NR96XJRGD48NNHH431"
    pattern = "pat_01KV1PX3NR96XJRGD48NNHH431"
    return [
        PatternWatched(**envelope(meta(T0), WATCH_STREAM, 1), user_id=user, pattern_id=pattern),
        PatternUnwatched(**envelope(meta(T0), WATCH_STREAM, 2), user_id=user, pattern_id=pattern),
        NotificationPreferencesSet(
            **envelope(meta(T0), PREFERENCES_STREAM, 1), user_id=user, email=True,
            slack_webhook_ciphertext="v1.bm9uY2UtYW5kLWNpcGhlcnRleHQ=", slack_webhook_hint="XyZ9",
            min_severity="p1", min_risk_score=80, digest="daily",
            events={"issue.created": EventChannels(in_app=False, email=True, slack=False),
                    "pattern.updated": EventChannels()}),
    ]


def prediction_samples() -> list[object]:
    def prd(version: int):  # type: ignore[no-untyped-def]
        return envelope(meta(T0), PREDICTION_STREAM, version)

    def alr(version: int):  # type: ignore[no-untyped-def]
        return envelope(meta(T0), ALERT_RULE_STREAM, version)

    def ntf(version: int):  # type: ignore[no-untyped-def]
        return envelope(meta(T0), INBOX_STREAM, version)

    pattern = "pat_01KV1PX3NR96XJRGD48NNHH431"
    user = "usr_01KV1PX3NR96XJRGD48NNHH431"
    return [
        PredictionGenerated(**prd(1), pattern_id=pattern, window_days=7, probability=0.8123,
                            predicted_at=T0, expires_at=T0 + timedelta(days=7), likely_trigger="Timeout on checkout",
                            impact="high", explanation="6 occurrence(s), last seen 2.0 day(s) ago",
                            model_version="recurrence-logit-v1", rate_per_day=0.214, sample_size=6,
                            last_seen_at=T0 - timedelta(days=2)),
        PredictionUpdated(**prd(2), probability=0.7001, impact="high", explanation="6 occurrence(s)",
                          model_version="recurrence-logit-v1", rate_per_day=0.2, sample_size=6,
                          last_seen_at=T0 - timedelta(days=2)),
        PredictionDismissed(**prd(3), reason="known maintenance"),
        PredictionFeedbackGiven(**prd(4), outcome="accurate", comment="it did"),
        PredictionExpired(**prd(5), recurred=True, recurred_at=T0 + timedelta(days=1), probability=0.8123),
        AlertRuleCreated(**alr(1), name="checkout", scope="global",
                         threshold=AlertThreshold(probability=0.5, window_days=7), channels=["email"],
                         snoozed_until=T0 + timedelta(days=1)),
        AlertRuleUpdated(**alr(2), snoozed_until=None, enabled=False),
        AlertFired(**alr(3), prediction_id="prd_01KV1PX3NR96XJRGD48NNHH431", pattern_id=pattern,
                   pattern_name="Timeout calling <*>", probability=0.8123, threshold=0.5, window_days=7),
        AlertRearmed(**alr(4), pattern_id=pattern, probability=0.3),
        AlertRuleDeleted(**alr(5)),
        NotificationRead(**ntf(1), user_id=user, notification_id="ntf_0123456789abcdef0123456789abcdef"),
        NotificationsReadAll(**ntf(2), user_id=user, type_prefix="prediction."),
        NotificationDismissed(**ntf(3), user_id=user, notification_id="ntf_0123456789abcdef0123456789abcdef"),
    ]


def pattern_samples() -> list[object]:
    """The pattern detector's decisions and users' pattern edits (issue #13)."""
    def pat(version: int):  # type: ignore[no-untyped-def]
        return envelope(meta(T0), PATTERN_STREAM, version)

    issue = IssueId("iss_01KV1PX3NR96XJRGD48NNHH431")
    return [
        PatternDetected(**pat(1), name="Timeout calling <*>", fingerprint=Fingerprint(
            domain="payments", service="checkout", component="gateway", error_signature="TimeoutError",
            hash="0f" * 16), template="Timeout calling <*>", founding_issue_id=issue),
        IssueLinkedToPattern(**pat(2), issue_id=issue, method="template", similarity=0.8571, fingerprint="0f" * 16,
                             severity="high", service="checkout", issue_opened_at=T0,
                             suggested_pattern_id=PatternId("pat_01KV1PX3NR96XJRGD48NNHH431"),
                             suggested_similarity=0.6, similar=[(IssueId("iss_01KV1PX3NNV29S67D9NT816VBS"), 0.4375)]),
        PatternUpdated(**pat(3), status=PatternStatus.ACTIVE, template="Timeout calling <*> after <*>"),
        IssueUnlinkedFromPattern(**pat(4), issue_id=issue, reason="unlinked"),
        PatternMerged(**pat(5), into_pattern_id=PatternId("pat_01KV1PX3NR96XJRGD48NNHH431")),
        IssueReanalysisRequested(**envelope(meta(T0), REANALYSIS_STREAM, 1), issue_id=issue, tier="deep"),
        IssueAnalyzed(**envelope(meta(T0), ISSUE, 10), stage=Stage.IN_LOOP, risk_score=57,
                      root_cause="Recurring failure pattern: Timeout calling <*>",
                      contributing_factors=["service: checkout", "2 issues in the pattern"], confidence=0.8571,
                      model="causeloop-grouping-v1"),
    ]


def settings_samples() -> list[object]:
    def env(version: int):  # type: ignore[no-untyped-def]
        return envelope(msgspec.structs.replace(meta(T0), client_ip="203.0.113.7"), SETTINGS_STREAM, version)

    return [
        WorkspaceProfileUpdated(**env(1), name="Acme Corp", slug="acme-corp", description=None, industry="FinTech",
                                timezone="Europe/Berlin", theme=Theme.DARK),
        AiSettingsUpdated(**env(2), auto_link=False, confidence_threshold=0.9, proof_window_days=14,
                          recurrence_window_days=60, alert_probability_threshold=0.5),
        RetentionSettingsUpdated(**env(3), issues_days=180, activity_days=90, audit_days=730, prompt_logs_days=30),
        MfaRequirementChanged(**env(4), mfa_required=True),
        OnboardingStepCompleted(**env(5), step=OnboardingStep.CONNECT_SOURCE),
        WorkspaceSlugClaimed(**envelope(meta(T0), SLUG_CLAIM_STREAM, 1),
                             organization_id="org_01KV1PX3NNV29S67D9NT816VBS", slug="acme-corp"),
    ]


def _members_samples() -> list[object]:
    """Members, invitations, profile and operator provisioning (issue #3)."""
    def ws(version: int):  # type: ignore[no-untyped-def]
        return envelope(meta(T0), WORKSPACE_STREAM, version)

    def inv(version: int):  # type: ignore[no-untyped-def]
        return envelope(meta(T0), INVITATION_STREAM, version)

    return [
        WorkspaceProvisioned(**envelope(meta(T0), ORGANIZATION_STREAM, 1),
                             organization_id="org_01KV1PX3NNV29S67D9NT816VBS", organization_slug="acme",
                             organization_name="Acme Inc", slug="acme", name="Acme",
                             owner_user_id="usr_01KV1PX3NR96XJRGD48NNHH431", plan=Plan.GROWTH, seats_total=25,
                             timezone="Europe/Paris"),
        MemberRoleChanged(**ws(3), user_id=BOB, from_role=Role.VIEWER, to_role=Role.ANALYST),
        MemberSuspended(**ws(4), user_id=BOB),
        MemberReactivated(**ws(5), user_id=BOB),
        MemberRemoved(**ws(6), user_id=BOB, role=Role.ANALYST),
        WorkspaceOffboarded(**ws(7)),
        UserProfileUpdated(**envelope(meta(T0), USER_STREAM, 2), name="Alice Liddell",
                           avatar_url="https://example.com/a.png", timezone="Europe/Paris", locale="en-GB"),
        InvitationSent(**inv(1), email="bob@example.com", role=Role.ANALYST, token_hash="ab" * 32,
                       expires_at=T0 + timedelta(days=7)),
        InvitationResent(**inv(2), token_hash="cd" * 32, expires_at=T0 + timedelta(days=8)),
        InvitationAccepted(**inv(3), user_id=BOB),
        InvitationRevoked(**inv(4)),
        OrganizationProvisioned(**envelope(meta(T0), ORGANIZATION_STREAM, 1), slug="acme", name="Acme Inc",
                                plan=Plan.GROWTH, seats_total=25),
        OrganizationOffboarded(**envelope(meta(T0), ORGANIZATION_STREAM, 2)),
    ]


def credential_samples() -> list[object]:
    """Token events hold only SHA-256 hex digests of secrets."""
    return [
        ApiTokenCreated(**envelope(meta(T0), TOKEN_STREAM, 1), kind=TokenKind.SERVICE_ACCOUNT,
                        owner_id="sa_01KV1PX3NR96XJRGD48NNHH431", name="ci-deploy",
                        scopes=("issues:read", "issues:write"), secret_hash="a" * 64, expires_at=T0),
        ApiTokenRotated(**envelope(meta(T0), TOKEN_STREAM, 2), secret_hash="b" * 64),
        ApiTokenRevoked(**envelope(meta(T0), TOKEN_STREAM, 3), reason="service_account_deleted"),
        ServiceAccountCreated(**envelope(meta(T0), SERVICE_ACCOUNT_STREAM, 1), name="CI", description="deploys",
                              role=Role.ANALYST),
        ServiceAccountUpdated(**envelope(meta(T0), SERVICE_ACCOUNT_STREAM, 2), role=Role.VIEWER),
        ServiceAccountDeleted(**envelope(meta(T0), SERVICE_ACCOUNT_STREAM, 3)),
    ]


WEBHOOK_STREAM = UUID("019a0c1e-0000-7000-8000-0000000000bb")


def webhook_samples() -> list[object]:
    """Outbound webhook endpoints: the signing secret only as ciphertext."""
    def env(version: int):  # type: ignore[no-untyped-def]
        return envelope(meta(T0), WEBHOOK_STREAM, version)

    return [
        WebhookEndpointCreated(**env(1), url="https://hooks.example.com/causeloop",
                               event_types=["issue.created", "issue.resolved"],
                               connector_id="con_01KV1PX3NR96XJRGD48NNHH431", description="ops",
                               secret_ciphertext="v1.bm9uY2UtYW5kLWNpcGhlcnRleHQ="),
        WebhookEndpointUpdated(**env(2), event_types=["issue.updated"], status=EndpointStatus.DISABLED),
        WebhookSecretRotated(**env(3), secret_ciphertext="v1.b3RoZXItY2lwaGVydGV4dA==",
                             previous_valid_until=T0 + timedelta(hours=24)),
        WebhookPingRequested(**env(4), delivery_id="dlv_01KV1PX3NR96XJRGD48NNHH431"),
        WebhookRedeliveryRequested(**env(5), delivery_id="dlv_01KV1PX3NR96XJRGD48NNHH431"),
        WebhookEndpointDisabled(**env(6), reason="every delivery failed for 24 h", failing_since=T0),
        WebhookEndpointDeleted(**env(7)),
    ]


def connector_samples() -> list[object]:
    """Connectors (credentials only as ciphertext) and sync runs (issue #12)."""
    def con(version: int):  # type: ignore[no-untyped-def]
        return envelope(meta(T0), CONNECTOR_STREAM, version)

    def run(version: int):  # type: ignore[no-untyped-def]
        return envelope(meta(T0), RUN_STREAM, version)

    counts = Counts(fetched=120, created=100, updated=15, unchanged=5, failed=0)
    return [
        ConnectorCreated(**con(1), connector_type="github", display_name="Web repo",
                         config={"owner": "acme", "repo": "web"}, schedule="*/30 * * * *",
                         credentials_ciphertext="v1.bm9uY2UtYW5kLWNpcGhlcnRleHQ=", status=ConnectorStatus.CONNECTED),
        ConnectorReconfigured(**con(2), schedule="0 * * * *", credentials_ciphertext="v1.b3RoZXI="),
        ConnectorPaused(**con(3)),
        ConnectorResumed(**con(4), status=ConnectorStatus.CONNECTED),
        ConnectorSynced(**con(5), run_id=RUN, cursor={"since": "2026-12-01T10:00:00Z"}, counts=counts),
        ConnectorSyncFailed(**con(6), run_id=RUN, error="api.github.com answered HTTP 503", consecutive_failures=1),
        ConnectorDeleted(**con(7)),
        SyncRunQueued(**run(1), connector_id=CONNECTOR, kind=RunKind.BACKFILL, backfill_days=90),
        SyncRunStarted(**run(2), connector_id=CONNECTOR, worker="host-1234"),
        SyncRunProgressed(**run(3), connector_id=CONNECTOR, counts=counts),
        SyncRunSucceeded(**run(4), connector_id=CONNECTOR, counts=counts),
        SyncRunFailed(**run(5), connector_id=CONNECTOR, counts=counts, error="timeout"),
        ConnectorSigningSecretSet(**con(8), secret_ciphertext="v1.c2lnbmluZw=="),
        InboundDeliveryReceived(**envelope(meta(T0), DELIVERY_STREAM, 1), connector_id=CONNECTOR,
                                delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958", accepted=3, rejected=1),
    ]


def recommendation_samples() -> list[object]:
    """The recommendation worker's proposals, people's changes and verification (issue #13)."""
    def rec(version: int):  # type: ignore[no-untyped-def]
        return envelope(meta(T0), RECOMMENDATION_STREAM, version)

    pattern = PatternId("pat_01KV1PX3NR96XJRGD48NNHH431")
    return [
        RecommendationCreated(**rec(1), pattern_id=pattern, playbook="timeout-budget", title="Set timeouts",
                              fix_type="code_fix", impact="high", effort="medium", overview="Bound each call.",
                              steps=[Step(id="s1", title="Measure", description="Find p99 latency.")], rank=1,
                              expected_loops_prevented=12.5),
        RecommendationStatusChanged(**rec(2), from_status=RecommendationStatus.PENDING,
                                    to_status=RecommendationStatus.IMPLEMENTED),
        RecommendationStepCompleted(**rec(3), step_id="s1", completed=True),
        RecommendationVerificationStarted(**rec(4), pattern_id=pattern, proof_window_days=30, watching_since=T0,
                                          pre_fix_rate_per_day=0.5, explanation="Watching for 30 days."),
        RecommendationVerified(**rec(5), pattern_id=pattern),
        RecommendationReopened(**rec(6), pattern_id=pattern, issue_id=IssueId("iss_01KV1PX3NR96XJRGD48NNHH431")),
        RecommendationDismissed(**rec(7), reason="not worth it"),
    ]


INGESTION_JOB_STREAM = UUID("019a0c1e-0000-7000-8000-0000000000bb")


def ingestion_samples() -> list[object]:
    """An ingestion job (issue #12): one event records the whole push."""
    return [
        IngestionJobCompleted(**envelope(meta(T0), INGESTION_JOB_STREAM, 1), kind=JobKind.BATCH, received=3,
                              rejected=[RejectedRecord(index=1, reason="title: must be at most 300 characters")],
                              issues=[IngestedIssue(index=0, issue_id="iss_01KV1PX3NR96XJRGD48NNHH431",
                                                    outcome=Outcome.CREATED, source="jira", external_id="OPS-1"),
                                      IngestedIssue(index=2, issue_id="iss_01KV1PX3NR96XJRGD48NNHH431",
                                                    outcome=Outcome.UNCHANGED, source="jira", external_id="OPS-1")],
                              source=None, connector_id="con_01KV1PX3NR96XJRGD48NNHH431"),
    ]


def push_samples() -> list[object]:
    """A recommendation's ticket in an issue tracker."""
    return [
        RecommendationPushed(**envelope(meta(T0), RECOMMENDATION_STREAM, 8), tracker="jira", project="RISK",
                             connector_id="con_01KV1PX3NR96XJRGD48NNHH431", ticket_key="RISK-12",
                             ticket_url="https://acme.atlassian.net/browse/RISK-12"),
    ]


def ingested_samples() -> list[object]:
    """The issue events a one-signal push appends with its job folded in (`ingested_by`)."""
    first, edited = samples()[:2]
    assert isinstance(first, IssueOpened) and isinstance(edited, IssueDetailsEdited)
    return [
        msgspec.structs.replace(first, ingested_by=IngestedBy(
            job_id="ing_job_01KV1PX3NR96XJRGD48NNHH431", kind="event", record_source="jira", external_id="JIRA-1042")),
        msgspec.structs.replace(edited, ingested_by=IngestedBy(
            job_id="ing_job_01KV1PX3NR96XJRGD48NNHH432", kind="source", record_source="jira", external_id="JIRA-1042",
            source="jira", connector_id=CONNECTOR)),
    ]
