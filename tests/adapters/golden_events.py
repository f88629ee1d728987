"""One instance of every stored event type, as the golden files record it."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import msgspec

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
from domain.ingestion.events import IngestedIssue, IngestionJobCompleted, JobKind, Outcome, RejectedRecord
from domain.issues.events import (
    IssueAssigned,
    IssueClosed,
    IssueCommented,
    IssueDetailsEdited,
    IssueOpened,
    IssuePatternLinked,
    IssuePatternUnlinked,
    IssueReopened,
    IssueStatusChanged,
    Severity,
    Status,
)
from domain.mfa.events import TotpActivated, TotpEnrolled, TotpRemoved
from domain.sessions.events import SessionRefreshed, SessionRevoked, SessionStarted
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
BOB = "usr_01KV1PX3NR96XJRGD48NNHH432"


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
        *ingestion_samples(),
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
