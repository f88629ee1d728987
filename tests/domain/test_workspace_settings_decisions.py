"""Workspace settings decisions: only changes are recorded, and the rules (slug, retention floor) hold."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from domain.errors import InvalidValue
from domain.ids import WorkspaceId
from domain.workspace_settings.events import (
    AiSettingsUpdated,
    OnboardingStep,
    RetentionSettingsUpdated,
    Theme,
    WorkspaceProfileUpdated,
    WorkspaceSlugClaimed,
)
from domain.workspace_settings.settings import (
    AiEdit,
    ProfileEdit,
    Provisioned,
    RetentionBelowMinimum,
    RetentionEdit,
    SlugTaken,
    WorkspaceSettings,
    advance,
    claim_slug,
    complete_onboarding_step,
    current_step,
    require_mfa,
    update_ai,
    update_profile,
    update_retention,
)
from tests.builders import meta

STREAM = uuid.UUID("3c9e1f2a-7b4d-5e6f-8a1b-2c3d4e5f6a7b")
CLAIM = uuid.UUID("8d2e4f6a-1b3c-5d7e-9f0a-2b4c6d8e0f1a")
FRESH = WorkspaceSettings(id=STREAM)
ACME = Provisioned(name="acme", slug="acme")


def test_a_profile_edit_records_only_the_fields_that_change() -> None:
    (event,) = update_profile(FRESH, ProfileEdit(name="  Acme Corp ", slug="acme", theme=Theme.DARK), ACME, meta())

    assert isinstance(event, WorkspaceProfileUpdated)
    assert (event.name, event.slug, event.theme, event.timezone) == ("Acme Corp", msgspec.UNSET, Theme.DARK,
                                                                     msgspec.UNSET)
    assert event.originator_id == STREAM and event.originator_version == 1


def test_an_edit_to_the_current_values_records_nothing() -> None:
    assert update_profile(FRESH, ProfileEdit(name="acme", timezone="UTC"), ACME, meta()) == []
    assert update_ai(FRESH, AiEdit(alert_probability_threshold=0.70), meta()) == []
    assert require_mfa(FRESH, False, meta()) == []


@pytest.mark.parametrize("slug", ["-acme", "acme-", "Acme", "a" * 61, "ac me", ""])
def test_a_slug_must_be_lowercase_alnum_and_inner_hyphens(slug: str) -> None:
    with pytest.raises(InvalidValue) as raised:
        update_profile(FRESH, ProfileEdit(slug=slug), ACME, meta())

    assert raised.value.field == "slug"


def test_a_slug_held_by_another_workspace_of_the_organization_is_refused() -> None:
    with pytest.raises(SlugTaken):
        claim_slug(claim_stream=CLAIM, owner=WorkspaceId("ws_01KV1PX3NQ3B497SHK7JTNT999"), organization_id="org_1",
                   slug="beta", meta=meta())


def test_a_free_slug_is_claimed_once_and_its_owner_takes_it_back_without_a_new_claim() -> None:
    (claim,) = claim_slug(claim_stream=CLAIM, owner=None, organization_id="org_1", slug="beta", meta=meta())

    assert isinstance(claim, WorkspaceSlugClaimed)
    assert (claim.originator_id, claim.originator_version, claim.slug) == (CLAIM, 1, "beta")
    assert claim_slug(claim_stream=CLAIM, owner=claim.workspace_id, organization_id="org_1", slug="beta",
                      meta=meta()) == []


def test_audit_retention_below_365_days_is_refused_with_its_own_code() -> None:
    with pytest.raises(RetentionBelowMinimum) as raised:
        update_retention(FRESH, RetentionEdit(audit_days=364), meta())

    assert raised.value.code == "retention_below_minimum" and raised.value.details["field"] == "audit_days"


def test_retention_changes_fold_into_the_state() -> None:
    events = update_retention(FRESH, RetentionEdit(issues_days=180, audit_days=365), meta())

    assert [type(e) for e in events] == [RetentionSettingsUpdated]
    assert advance(FRESH, events).retention.issues_days == 180


def test_an_ai_threshold_outside_zero_to_one_is_invalid() -> None:
    with pytest.raises(InvalidValue):
        update_ai(FRESH, AiEdit(confidence_threshold=1.5), meta())
    (event,) = update_ai(FRESH, AiEdit(confidence_threshold=0.5), meta())
    assert isinstance(event, AiSettingsUpdated) and event.confidence_threshold == 0.5


def test_the_current_onboarding_step_is_the_first_incomplete_one() -> None:
    state = advance(FRESH, complete_onboarding_step(FRESH, OnboardingStep.CONNECT_SOURCE, meta()))
    state = advance(state, complete_onboarding_step(state, OnboardingStep.REVIEW_INSIGHTS, meta()))

    assert current_step(FRESH) == OnboardingStep.CONNECT_SOURCE
    assert current_step(state) == OnboardingStep.INVITE_TEAM
    assert complete_onboarding_step(state, OnboardingStep.REVIEW_INSIGHTS, meta()) == []
    assert state.version == 2


def test_a_slug_claim_leaves_the_settings_stream_numbering_alone() -> None:
    events = update_profile(FRESH, ProfileEdit(slug="beta"), ACME, meta())
    events += claim_slug(claim_stream=CLAIM, owner=None, organization_id="org_1", slug="beta", meta=meta())

    state = advance(FRESH, events)
    (mfa,) = require_mfa(state, True, meta())

    assert (state.version, state.profile.slug) == (1, "beta")
    assert mfa.originator_version == 2
