"""A user's Clerk identity: linked once on the first sign-in by email, never silently replaced."""

from __future__ import annotations

import uuid

import pytest

from domain.identity.user import ExternalIdentityConflict, link_external_identity, project_user, register_user
from tests.builders import T0, T1, meta

USER = uuid.UUID("6a1d2c3b-4e5f-5a6b-8c7d-9e0f1a2b3c4d")


def registered():  # type: ignore[no-untyped-def]
    return project_user(None, [register_user(user_id=USER, email="alice@example.com", meta=meta(T0))])


def test_the_first_sign_in_links_the_clerk_id() -> None:
    events = link_external_identity(registered(), "user_2abc", meta(T1))

    linked = project_user(registered(), events)
    assert [e.clerk_user_id for e in events] == ["user_2abc"] and events[0].originator_version == 2
    assert linked is not None and linked.clerk_user_id == "user_2abc"


def test_linking_the_same_clerk_id_again_records_nothing() -> None:
    linked = project_user(registered(), link_external_identity(registered(), "user_2abc", meta(T1)))

    assert linked is not None and link_external_identity(linked, "user_2abc", meta(T1)) == []


def test_another_clerk_id_for_a_linked_user_is_refused() -> None:
    linked = project_user(registered(), link_external_identity(registered(), "user_2abc", meta(T1)))

    assert linked is not None
    with pytest.raises(ExternalIdentityConflict):
        link_external_identity(linked, "user_9xyz", meta(T1))
