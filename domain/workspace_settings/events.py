"""Workspace settings events (category `settings`, one stream per workspace): each carries only what changed.

Additive-only, like every event: never rename or retype a field.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import msgspec

from domain.events import DomainEvent


class Theme(StrEnum):
    LIGHT = "light"
    DARK = "dark"


class OnboardingStep(StrEnum):
    """The setup wizard's steps, in the order the wizard shows them."""

    CONNECT_SOURCE = "connect_source"
    INVITE_TEAM = "invite_team"
    REVIEW_INSIGHTS = "review_insights"
    CONFIGURE_ALERTS = "configure_alerts"
    GENERATE_REPORT = "generate_report"


class SettingsEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "settings"


class WorkspaceProfileUpdated(SettingsEvent, frozen=True, kw_only=True):
    """Only the changed fields are present; `description` and `industry` may be cleared (null)."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    slug: str | msgspec.UnsetType = msgspec.UNSET
    description: str | None | msgspec.UnsetType = msgspec.UNSET
    industry: str | None | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET
    theme: Theme | msgspec.UnsetType = msgspec.UNSET


class AiSettingsUpdated(SettingsEvent, frozen=True, kw_only=True):
    """Only the changed fields are present."""

    auto_link: bool | msgspec.UnsetType = msgspec.UNSET
    confidence_threshold: float | msgspec.UnsetType = msgspec.UNSET
    proof_window_days: int | msgspec.UnsetType = msgspec.UNSET
    recurrence_window_days: int | msgspec.UnsetType = msgspec.UNSET
    alert_probability_threshold: float | msgspec.UnsetType = msgspec.UNSET


class RetentionSettingsUpdated(SettingsEvent, frozen=True, kw_only=True):
    """Only the changed retention windows (days) are present."""

    issues_days: int | msgspec.UnsetType = msgspec.UNSET
    activity_days: int | msgspec.UnsetType = msgspec.UNSET
    audit_days: int | msgspec.UnsetType = msgspec.UNSET
    prompt_logs_days: int | msgspec.UnsetType = msgspec.UNSET


class MfaRequirementChanged(SettingsEvent, frozen=True, kw_only=True):
    mfa_required: bool


class OnboardingStepCompleted(SettingsEvent, frozen=True, kw_only=True):
    step: OnboardingStep


class WorkspaceSlugClaimed(SettingsEvent, frozen=True, kw_only=True):
    """The first and only event of a claim stream keyed by (organization, slug): the event store's key makes
    the slug the envelope's workspace's for good, so two workspaces can never win the same slug."""

    organization_id: str
    slug: str


AnySettingsEvent = (
    WorkspaceProfileUpdated | AiSettingsUpdated | RetentionSettingsUpdated | MfaRequirementChanged
    | OnboardingStepCompleted
)
"""The events of a workspace's settings stream (what the settings fold reads)."""
AnySettingsCategoryEvent = AnySettingsEvent | WorkspaceSlugClaimed
SETTINGS_EVENT_TYPES: tuple[type[SettingsEvent], ...] = (
    WorkspaceProfileUpdated, AiSettingsUpdated, RetentionSettingsUpdated, MfaRequirementChanged,
    OnboardingStepCompleted, WorkspaceSlugClaimed,
)
