"""Workspace and user rules, as given/when/then over pure functions."""

from __future__ import annotations

import uuid

import pytest

from domain.errors import InvalidValue
from domain.identity.events import MemberAdded, UserRegistered, WorkspaceProvisioned
from domain.identity.roles import Role
from domain.identity.user import clean_email, project_user, register_user
from domain.identity.workspace import (
    Organization,
    add_member,
    clean_slug,
    project_workspace,
    provision_workspace,
)
from domain.ids import OrganizationId, UserId
from tests.builders import T1, meta

WORKSPACE = uuid.UUID("01949a3c-0000-7000-8000-0000000000aa")
OWNER = UserId("usr_01KV1PX3NR96XJRGD48NNHH431")
BOB = UserId("usr_01KV1PX3NR96XJRGD48NNHH432")
ORG = Organization(id=OrganizationId("org_01KV1PX3NNV29S67D9NT816VBS"), slug="acme", name="Acme")


def provisioned() -> list[WorkspaceProvisioned | MemberAdded]:
    events = provision_workspace(workspace_id=WORKSPACE, slug="acme", name="Acme", organization=ORG,
                                 owner_user_id=OWNER, meta=meta())
    return [e for e in events if isinstance(e, WorkspaceProvisioned | MemberAdded)]


def test_a_new_workspace_has_its_owner_as_first_member() -> None:
    events = provisioned()

    assert [type(e) for e in events] == [WorkspaceProvisioned, MemberAdded]
    assert [e.originator_version for e in events] == [1, 2]
    assert events[1] == MemberAdded(originator_id=WORKSPACE, originator_version=2, occurred_at=T1,
                                    workspace_id=meta().workspace_id, actor=meta().actor, user_id=OWNER,
                                    role=Role.OWNER)


def test_adding_a_new_member_records_the_role_at_the_next_version() -> None:
    workspace = project_workspace(None, provisioned())
    assert workspace is not None

    events = add_member(workspace, BOB, Role.ANALYST, meta())

    assert [(e.originator_version, e.user_id, e.role) for e in events if isinstance(e, MemberAdded)] == [
        (3, BOB, Role.ANALYST)
    ]


def test_adding_an_existing_member_again_records_nothing() -> None:
    workspace = project_workspace(None, provisioned())
    assert workspace is not None

    assert add_member(workspace, OWNER, Role.VIEWER, meta()) == []


@pytest.mark.parametrize("slug", ["", "-acme", "acme-", "ac me", "a" * 64, "acme_1", "ünï"])
def test_a_workspace_slug_is_lowercase_letters_digits_and_inner_hyphens(slug: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        clean_slug(slug)

    assert refused.value.field == "slug"


def test_a_slug_is_compared_in_lower_case() -> None:
    assert clean_slug(" Acme-2 ") == "acme-2"


@pytest.mark.parametrize("email", ["", "alice", "@example.com", "alice@", "al ice@example.com"])
def test_an_email_must_have_text_on_both_sides_of_the_at_sign(email: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        clean_email(email)

    assert refused.value.field == "email"


def test_a_user_registers_with_a_lowercased_email_and_a_default_name() -> None:
    user_id = uuid.uuid4()

    event = register_user(user_id=user_id, email=" Alice@Example.COM ", meta=meta())

    assert (event.email, event.name, event.originator_version) == ("alice@example.com", "alice", 1)
    assert project_user(None, [event]) is not None


def test_a_registered_user_keeps_the_name_given() -> None:
    event = register_user(user_id=uuid.uuid4(), email="alice@example.com", name=" Alice Liddell ", meta=meta())

    assert isinstance(event, UserRegistered)
    assert event.name == "Alice Liddell"
