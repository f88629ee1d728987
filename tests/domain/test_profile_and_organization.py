"""The user's profile (GET/PATCH /v1/users/me limits) and the organization that operators provision."""

from __future__ import annotations

import uuid

import pytest

from domain.errors import InvalidValue
from domain.identity.errors import Offboarded
from domain.identity.events import OrganizationOffboarded, Plan, UserProfileUpdated
from domain.identity.organization import (
    evolve as evolve_org,
)
from domain.identity.organization import (
    offboard_organization,
    provision_organization,
)
from domain.identity.user import ProfileEdit, User, evolve, register_user, update_profile
from tests.builders import meta

USER = uuid.UUID("01949a3c-0000-7000-8000-0000000000cc")
ORG = uuid.UUID("01949a3c-0000-7000-8000-0000000000dd")
ZONES = frozenset({"UTC", "Europe/Paris", "America/New_York"})


def alice() -> User:
    return evolve(None, register_user(user_id=USER, email="alice@example.com", meta=meta()))


def test_a_profile_change_records_the_whole_profile_at_the_next_version() -> None:
    events = update_profile(alice(), ProfileEdit(name=" Alice Liddell ", timezone="Europe/Paris", locale="pt-BR"),
                            meta(), timezones=ZONES)

    assert [(type(e), e.originator_version, e.name, e.avatar_url, e.timezone, e.locale) for e in events] == [
        (UserProfileUpdated, 2, "Alice Liddell", None, "Europe/Paris", "pt-BR")]
    assert evolve(alice(), events[0]).timezone == "Europe/Paris"


def test_null_clears_an_optional_field_and_unchanged_values_record_nothing() -> None:
    user = evolve(alice(), update_profile(alice(), ProfileEdit(avatar_url="https://x.example/a.png"), meta(),
                                          timezones=ZONES)[0])

    cleared = update_profile(user, ProfileEdit(avatar_url=None), meta(), timezones=ZONES)

    assert [e.avatar_url for e in cleared] == [None]
    assert update_profile(user, ProfileEdit(avatar_url="https://x.example/a.png", name="alice"), meta(),
                          timezones=ZONES) == []


@pytest.mark.parametrize(("edit", "field"), [
    (ProfileEdit(name=""), "name"),
    (ProfileEdit(name="x" * 201), "name"),
    (ProfileEdit(avatar_url="https://x.example/" + "a" * 2048), "avatar_url"),
    (ProfileEdit(avatar_url="javascript:alert(1)"), "avatar_url"),
    (ProfileEdit(timezone="Mars/Olympus"), "timezone"),
    (ProfileEdit(timezone="x" * 101), "timezone"),
    (ProfileEdit(locale="english please"), "locale"),
    (ProfileEdit(locale="en-" + "a" * 20), "locale"),
])
def test_profile_limits_name_the_field(edit: ProfileEdit, field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        update_profile(alice(), edit, meta(), timezones=ZONES)

    assert refused.value.field == field


@pytest.mark.parametrize("locale", ["en", "en-US", "zh-Hant-TW", "de-CH-1996", "es-419", "en-US-x-twain"])
def test_common_bcp47_tags_are_accepted(locale: str) -> None:
    assert update_profile(alice(), ProfileEdit(locale=locale), meta(), timezones=ZONES)[0].locale == locale


def test_an_organization_is_provisioned_with_a_clean_slug_and_seats() -> None:
    event = provision_organization(organization_id=ORG, slug=" Acme ", name="Acme Inc", plan=Plan.STARTER,
                                   seats_total=5, meta=meta())

    assert (event.slug, event.name, event.plan, event.seats_total) == ("acme", "Acme Inc", Plan.STARTER, 5)


@pytest.mark.parametrize(("slug", "seats", "field"), [("-bad-", 10, "org_slug"), ("acme", 0, "seats_total")])
def test_a_bad_slug_or_seat_count_is_refused(slug: str, seats: int, field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        provision_organization(organization_id=ORG, slug=slug, name="Acme", plan=Plan.FREE, seats_total=seats,
                               meta=meta())

    assert refused.value.field == field


def test_an_organization_is_offboarded_once() -> None:
    org = evolve_org(None, provision_organization(organization_id=ORG, slug="acme", name="Acme", plan=Plan.FREE,
                                                  seats_total=10, meta=meta()))
    events = offboard_organization(org, meta())

    assert [type(e) for e in events] == [OrganizationOffboarded]
    with pytest.raises(Offboarded):
        offboard_organization(evolve_org(org, events[0]), meta())  # type: ignore[arg-type]
