"""The workspace settings aggregate: profile, AI, retention, the MFA requirement and onboarding progress.

One stream per workspace. An empty stream means every default; each decision records only what changes,
so a request that changes nothing appends nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import datetime
from typing import TypeVar, assert_never, cast
from uuid import UUID

import msgspec

from domain.errors import DomainError, InvalidValue
from domain.events import Meta, envelope
from domain.ids import WorkspaceId
from domain.workspace_settings.events import (
    AiSettingsUpdated,
    AnySettingsEvent,
    MfaRequirementChanged,
    OnboardingStep,
    OnboardingStepCompleted,
    RetentionSettingsUpdated,
    SettingsEvent,
    Theme,
    WorkspaceProfileUpdated,
    WorkspaceSlugClaimed,
)

NAME_MIN, NAME_MAX = 2, 100
DESCRIPTION_MAX = 2000
INDUSTRY_MAX = 100
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?$"
AUDIT_DAYS_FLOOR = 365
RETENTION_MAX_DAYS = 3650
PROOF_WINDOW_DAYS = (7, 365)
RECURRENCE_WINDOW_DAYS = (1, 365)
_SLUG = re.compile(SLUG_PATTERN)
T = TypeVar("T")
Number = TypeVar("Number", int, float)


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    """`name` and `slug` are None until changed here: until then the provisioned ones stand."""

    name: str | None = None
    slug: str | None = None
    description: str | None = None
    industry: str | None = None
    timezone: str = "UTC"
    theme: Theme = Theme.LIGHT


class AiSettings(msgspec.Struct, frozen=True, kw_only=True):
    auto_link: bool = True
    confidence_threshold: float = 0.80
    proof_window_days: int = 30
    recurrence_window_days: int = 30
    alert_probability_threshold: float = 0.70


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    issues_days: int = 365
    activity_days: int = 365
    audit_days: int = 365
    prompt_logs_days: int = 90


class WorkspaceSettings(msgspec.Struct, frozen=True, kw_only=True):
    """`id` is the settings stream's; version 0 means nothing was ever changed (every default)."""

    id: UUID
    version: int = 0
    profile: Profile = Profile()
    ai: AiSettings = AiSettings()
    retention: Retention = Retention()
    mfa_required: bool = False
    completed_steps: tuple[OnboardingStep, ...] = ()
    updated_at: datetime | None = None
    onboarding_updated_at: datetime | None = None




class ProfileEdit(msgspec.Struct, frozen=True, kw_only=True):
    """A requested change; UNSET fields stay as they are."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    slug: str | msgspec.UnsetType = msgspec.UNSET
    description: str | None | msgspec.UnsetType = msgspec.UNSET
    industry: str | None | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET
    theme: Theme | msgspec.UnsetType = msgspec.UNSET


class AiEdit(msgspec.Struct, frozen=True, kw_only=True):
    auto_link: bool | msgspec.UnsetType = msgspec.UNSET
    confidence_threshold: float | msgspec.UnsetType = msgspec.UNSET
    proof_window_days: int | msgspec.UnsetType = msgspec.UNSET
    recurrence_window_days: int | msgspec.UnsetType = msgspec.UNSET
    alert_probability_threshold: float | msgspec.UnsetType = msgspec.UNSET


class RetentionEdit(msgspec.Struct, frozen=True, kw_only=True):
    issues_days: int | msgspec.UnsetType = msgspec.UNSET
    activity_days: int | msgspec.UnsetType = msgspec.UNSET
    audit_days: int | msgspec.UnsetType = msgspec.UNSET
    prompt_logs_days: int | msgspec.UnsetType = msgspec.UNSET


class Provisioned(msgspec.Struct, frozen=True, kw_only=True):
    """The name and slug the workspace was provisioned with (from its `workspace` stream)."""

    name: str
    slug: str


class SlugTaken(DomainError):
    code = "conflict"

    def __init__(self, slug: str) -> None:
        super().__init__(f"slug {slug!r} is already used by another workspace of this organization", slug=slug)


class RetentionBelowMinimum(DomainError):
    code = "retention_below_minimum"

    def __init__(self, field: str, minimum: int) -> None:
        super().__init__(f"{field} must be at least {minimum} days", field=field, minimum=str(minimum))


def evolve(state: WorkspaceSettings, event: AnySettingsEvent) -> WorkspaceSettings:
    replace = msgspec.structs.replace
    moved = replace(state, version=event.originator_version)
    match event:
        case WorkspaceProfileUpdated():
            return replace(moved, profile=replace(state.profile, **_changed(event)), updated_at=event.occurred_at)
        case AiSettingsUpdated():
            return replace(moved, ai=replace(state.ai, **_changed(event)), updated_at=event.occurred_at)
        case RetentionSettingsUpdated():
            return replace(moved, retention=replace(state.retention, **_changed(event)), updated_at=event.occurred_at)
        case MfaRequirementChanged():
            return replace(moved, mfa_required=event.mfa_required, updated_at=event.occurred_at)
        case OnboardingStepCompleted():
            steps = state.completed_steps if event.step in state.completed_steps else (
                *state.completed_steps, event.step)
            return replace(moved, completed_steps=steps, onboarding_updated_at=event.occurred_at)
        case _:
            assert_never(event)


def project_settings(stream_id: UUID, events: Iterable[AnySettingsEvent]) -> WorkspaceSettings:
    return functools.reduce(evolve, events, WorkspaceSettings(id=stream_id))


def _changed(event: SettingsEvent) -> dict[str, object]:
    envelope_fields = set(SettingsEvent.__struct_fields__)
    return {name: value for name, value in msgspec.structs.asdict(event).items()
            if name not in envelope_fields and value is not msgspec.UNSET}


def _unless_same(new: T | msgspec.UnsetType, current: T) -> T | msgspec.UnsetType:
    return msgspec.UNSET if new is msgspec.UNSET or new == current else new


def current_step(state: WorkspaceSettings) -> OnboardingStep | None:
    """The wizard shows the first step not completed yet; None once every step is done."""
    return next((step for step in OnboardingStep if step not in state.completed_steps), None)


def clean_name(name: str) -> str:
    """A workspace name is 2 to 100 characters once surrounding blanks are removed."""
    name = name.strip()
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidValue("name", f"must be {NAME_MIN}-{NAME_MAX} characters")
    return name


def clean_slug(slug: str) -> str:
    """A slug is 1 to 60 lowercase letters, digits and hyphens, starting and ending with a letter or digit."""
    if not _SLUG.fullmatch(slug):
        raise InvalidValue("slug", "must be 1-60 lowercase letters, digits and hyphens, "
                                   "starting and ending with a letter or digit")
    return slug


def _clean_optional(field: str, value: str | None | msgspec.UnsetType, limit: int) -> str | None | msgspec.UnsetType:
    """Blank text clears the field (null); longer than `limit` is refused."""
    if value is msgspec.UNSET or value is None:
        return value
    value = value.strip()
    if len(value) > limit:
        raise InvalidValue(field, f"must be at most {limit} characters")
    return value or None


def update_profile(state: WorkspaceSettings, edit: ProfileEdit, provisioned: Provisioned,
                   meta: Meta) -> list[SettingsEvent]:
    """Setting a field to its current value records nothing (a new slug must also be claimed: `claim_slug`)."""
    name = msgspec.UNSET if edit.name is msgspec.UNSET else clean_name(edit.name)
    slug = msgspec.UNSET if edit.slug is msgspec.UNSET else clean_slug(edit.slug)
    current = state.profile
    event = WorkspaceProfileUpdated(
        **envelope(meta, state.id, state.version + 1),
        name=_unless_same(name, current.name or provisioned.name),
        slug=_unless_same(slug, current.slug or provisioned.slug),
        description=_unless_same(_clean_optional("description", edit.description, DESCRIPTION_MAX),
                                 current.description),
        industry=_unless_same(_clean_optional("industry", edit.industry, INDUSTRY_MAX), current.industry),
        timezone=_unless_same(edit.timezone, current.timezone),
        theme=_unless_same(edit.theme, current.theme),
    )
    return [event] if _changed(event) else []


def claim_slug(*, claim_stream: UUID, owner: WorkspaceId | None, organization_id: str, slug: str,
               meta: Meta) -> list[SettingsEvent]:
    """A slug belongs to the first workspace of the organization that holds it (provisioned with it or renamed
    to it), for good: others are refused, and its owner may take it back without a new claim."""
    if owner == meta.workspace_id:
        return []
    if owner is not None:
        raise SlugTaken(slug)
    return [WorkspaceSlugClaimed(**envelope(meta, claim_stream, 1), organization_id=organization_id, slug=slug)]


def _in_range(field: str, value: Number | msgspec.UnsetType, low: float, high: float) -> Number | msgspec.UnsetType:
    if not isinstance(value, msgspec.UnsetType) and not low <= value <= high:
        raise InvalidValue(field, f"must be between {low:g} and {high:g}")
    return value


def update_ai(state: WorkspaceSettings, edit: AiEdit, meta: Meta) -> list[SettingsEvent]:
    """Thresholds are probabilities (0-1); the proof window is 7-365 days, the recurrence window 1-365."""
    current = state.ai
    event = AiSettingsUpdated(
        **envelope(meta, state.id, state.version + 1),
        auto_link=_unless_same(edit.auto_link, current.auto_link),
        confidence_threshold=_unless_same(_in_range("confidence_threshold", edit.confidence_threshold, 0, 1),
                                          current.confidence_threshold),
        proof_window_days=_unless_same(_in_range("proof_window_days", edit.proof_window_days, *PROOF_WINDOW_DAYS),
                                       current.proof_window_days),
        recurrence_window_days=_unless_same(
            _in_range("recurrence_window_days", edit.recurrence_window_days, *RECURRENCE_WINDOW_DAYS),
            current.recurrence_window_days),
        alert_probability_threshold=_unless_same(
            _in_range("alert_probability_threshold", edit.alert_probability_threshold, 0, 1),
            current.alert_probability_threshold),
    )
    return [event] if _changed(event) else []


RETENTION_MINIMUM_DAYS = {"issues_days": 1, "activity_days": 1, "audit_days": AUDIT_DAYS_FLOOR, "prompt_logs_days": 1}


def update_retention(state: WorkspaceSettings, edit: RetentionEdit, meta: Meta) -> list[SettingsEvent]:
    """Audit entries are kept at least 365 days (SOC 2 / GDPR Art. 5); every window is 1-3650 days."""
    for field, minimum in RETENTION_MINIMUM_DAYS.items():
        days = getattr(edit, field)
        if days is not msgspec.UNSET and days > RETENTION_MAX_DAYS:
            raise InvalidValue(field, f"must be at most {RETENTION_MAX_DAYS} days")
        if days is not msgspec.UNSET and days < minimum:
            if minimum > 1:
                raise RetentionBelowMinimum(field, minimum)
            raise InvalidValue(field, f"must be at least {minimum} day")
    current = state.retention
    event = RetentionSettingsUpdated(
        **envelope(meta, state.id, state.version + 1),
        issues_days=_unless_same(edit.issues_days, current.issues_days),
        activity_days=_unless_same(edit.activity_days, current.activity_days),
        audit_days=_unless_same(edit.audit_days, current.audit_days),
        prompt_logs_days=_unless_same(edit.prompt_logs_days, current.prompt_logs_days),
    )
    return [event] if _changed(event) else []


def require_mfa(state: WorkspaceSettings, required: bool, meta: Meta) -> list[SettingsEvent]:
    """Setting the requirement to what it already is records nothing."""
    if required == state.mfa_required:
        return []
    return [MfaRequirementChanged(**envelope(meta, state.id, state.version + 1), mfa_required=required)]


def complete_onboarding_step(state: WorkspaceSettings, step: OnboardingStep, meta: Meta) -> list[SettingsEvent]:
    """Steps may be completed in any order; completing a completed step records nothing."""
    if step in state.completed_steps:
        return []
    return [OnboardingStepCompleted(**envelope(meta, state.id, state.version + 1), step=step)]


def advance(state: WorkspaceSettings, events: Iterable[SettingsEvent]) -> WorkspaceSettings:
    """`state` after events just decided: a second decision in the same command numbers after the first's.

    Slug claims belong to streams of their own and leave the settings as they are.
    """
    own = [event for event in events if not isinstance(event, WorkspaceSlugClaimed)]
    return functools.reduce(evolve, cast(list[AnySettingsEvent], own), state)
