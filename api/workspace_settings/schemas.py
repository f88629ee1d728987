"""Request and response bodies of the workspace, settings and onboarding resources (api.md section B)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from api.core.input_policy import RequestBody
from domain.workspace_settings.events import Theme
from domain.workspace_settings.settings import (
    AUDIT_DAYS_FLOOR,
    DESCRIPTION_MAX,
    INDUSTRY_MAX,
    NAME_MAX,
    NAME_MIN,
    PROOF_WINDOW_DAYS,
    RECURRENCE_WINDOW_DAYS,
    RETENTION_MAX_DAYS,
    SLUG_PATTERN,
)

Unset = msgspec.UnsetType
UNSET = msgspec.UNSET

Name = Annotated[str, msgspec.Meta(min_length=NAME_MIN, max_length=NAME_MAX, description="2-100 characters")]
Slug = Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN, max_length=60, description=(
    "1-60 lowercase letters, digits and hyphens, starting and ending with a letter or digit; unique within the "
    "organization (409 conflict otherwise)"))]
Description = Annotated[str, msgspec.Meta(max_length=DESCRIPTION_MAX)]
Industry = Annotated[str, msgspec.Meta(max_length=INDUSTRY_MAX, description="Sector tag, e.g. FinTech, Software")]
Timezone = Annotated[str, msgspec.Meta(min_length=1, max_length=64,
                                       description="IANA time zone, e.g. America/New_York")]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
ProofWindow = Annotated[int, msgspec.Meta(ge=PROOF_WINDOW_DAYS[0], le=PROOF_WINDOW_DAYS[1])]
RecurrenceWindow = Annotated[int, msgspec.Meta(ge=RECURRENCE_WINDOW_DAYS[0], le=RECURRENCE_WINDOW_DAYS[1])]
RetentionDays = Annotated[int, msgspec.Meta(ge=1, le=RETENTION_MAX_DAYS)]
AuditDays = Annotated[int, msgspec.Meta(ge=1, le=RETENTION_MAX_DAYS, description=(
    f"At least {AUDIT_DAYS_FLOOR}: lower is 422 retention_below_minimum"))]



class UpdateWorkspaceRequest(RequestBody, kw_only=True):
    """Only the fields present change; `mfa_required` also needs the scope workspace:admin."""

    name: Name | Unset = UNSET
    slug: Slug | Unset = UNSET
    description: Description | None | Unset = UNSET
    industry: Industry | None | Unset = UNSET
    timezone: Timezone | Unset = UNSET
    theme: Theme | Unset = UNSET
    mfa_required: bool | Unset = UNSET


class WorkspaceResponse(msgspec.Struct, kw_only=True):
    """The workspace profile, its MFA requirement and the organization's plan card (read-only)."""

    id: str
    organization_id: str | None
    name: str | None
    slug: str | None
    description: str | None
    industry: str | None
    timezone: str
    theme: Theme
    mfa_required: bool
    plan: str | None
    seats_total: int | None
    seats_used: int | None
    version: int
    created_at: datetime | None
    updated_at: datetime | None


class UpdateAiSettingsRequest(RequestBody, kw_only=True):
    auto_link: bool | Unset = UNSET
    confidence_threshold: Probability | Unset = UNSET
    proof_window_days: ProofWindow | Unset = UNSET
    recurrence_window_days: RecurrenceWindow | Unset = UNSET
    alert_probability_threshold: Probability | Unset = UNSET


class AiSettingsResponse(msgspec.Struct, kw_only=True):
    auto_link: Annotated[bool, msgspec.Meta(description=(
        "Link new issues to existing patterns automatically (default true); when false a match is stored as the "
        "link's suggested_pattern_id, confirmed with link-pattern; a client fingerprint still links"))]
    confidence_threshold: Annotated[float, msgspec.Meta(description=(
        "Minimum similarity to auto-link an issue (below the grouper's 0.8 it changes nothing) and minimum "
        "confidence to surface a recommendation, 0.0-1.0 (default 0.80)"))]
    proof_window_days: Annotated[int, msgspec.Meta(
        description="Days a fix is watched before it counts as verified, 7-365 (default 30)")]
    recurrence_window_days: Annotated[int, msgspec.Meta(
        description="Days within which a pattern's repeat counts as a recurrence, 1-365 (default 30)")]
    alert_probability_threshold: Annotated[float, msgspec.Meta(
        description="Prediction probability that raises an alert, 0.0-1.0 (default 0.70)")]
    version: int
    updated_at: datetime | None


class UpdateRetentionRequest(RequestBody, kw_only=True):
    issues_days: RetentionDays | Unset = UNSET
    activity_days: RetentionDays | Unset = UNSET
    audit_days: AuditDays | Unset = UNSET
    prompt_logs_days: RetentionDays | Unset = UNSET


class RetentionResponse(msgspec.Struct, kw_only=True):
    issues_days: Annotated[int, msgspec.Meta(description="Issues and linked events, 1-3650 days (default 365)")]
    activity_days: Annotated[int, msgspec.Meta(description="Member activity logs, 1-3650 days (default 365)")]
    audit_days: Annotated[int, msgspec.Meta(description="Audit entries, 365-3650 days (default 365)")]
    prompt_logs_days: Annotated[int, msgspec.Meta(description="AI prompt logs, 1-3650 days (default 90)")]
    version: int
    updated_at: datetime | None


class FirstSync(msgspec.Struct, kw_only=True):
    status: Annotated[str, msgspec.Meta(description="not_started, or completed once an issue has arrived")]
    issues_ingested: int = 0


class OnboardingState(msgspec.Struct, kw_only=True):
    current_step: Annotated[str | None, msgspec.Meta(
        description="The first step not completed yet (connect_source first); null once all five are done")]
    completed_steps: Annotated[list[str], msgspec.Meta(description="In wizard order")]
    workspace_created: bool
    members_invited: Annotated[int, msgspec.Meta(description="Active members besides the provisioned owner")]
    connectors_connected: int
    alert_rule_created: bool
    first_sync: FirstSync
    updated_at: datetime | None


class OnboardingStepResponse(msgspec.Struct, kw_only=True):
    step: str
    completed: bool
    onboarding: OnboardingState
