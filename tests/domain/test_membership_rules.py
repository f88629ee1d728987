"""Membership rules of the Workspace aggregate: role levels, seats, the last admin, offboarding."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec
import pytest

from domain.errors import DomainError
from domain.events import envelope
from domain.identity.errors import LastAdmin, MemberNotFound, Offboarded, RoleAboveOwn, SeatLimit
from domain.identity.events import (
    MemberAdded,
    MemberReactivated,
    MemberRemoved,
    MemberRoleChanged,
    Plan,
    WorkspaceEvent,
    WorkspaceOffboarded,
    WorkspaceProvisioned,
)
from domain.identity.roles import ROLE_RANK, Role, may_grant
from domain.identity.workspace import (
    MemberStatus,
    Organization,
    Workspace,
    add_member,
    change_member_role,
    check_invitable,
    evolve,
    offboard_workspace,
    provision_workspace,
    reactivate_member,
    remove_member,
    suspend_member,
)
from domain.ids import OrganizationId, UserId
from tests.builders import meta

WORKSPACE = uuid.UUID("01949a3c-0000-7000-8000-0000000000aa")
OWNER = UserId("usr_01KV1PX3NR96XJRGD48NNHH431")
ADMIN = UserId("usr_01KV1PX3NR96XJRGD48NNHH432")
BOB = UserId("usr_01KV1PX3NR96XJRGD48NNHH433")
CAROL = UserId("usr_01KV1PX3NR96XJRGD48NNHH434")
ORG = Organization(id=OrganizationId("org_01KV1PX3NNV29S67D9NT816VBS"), slug="acme", name="Acme")


def apply(workspace: Workspace | None, events: Sequence[WorkspaceEvent]) -> Workspace:
    for event in events:
        workspace = evolve(workspace, event)  # type: ignore[arg-type]
    assert workspace is not None
    return workspace


def workspace_with(*members: tuple[UserId, Role], seats: int | None = None) -> Workspace:
    """A provisioned workspace (OWNER is its owner) with further `members` added."""
    workspace = apply(None, provision_workspace(workspace_id=WORKSPACE, slug="acme", name="Acme", organization=ORG,
                                                owner_user_id=OWNER, meta=meta(), seats_total=seats))
    for user_id, role in members:
        workspace = apply(workspace, add_member(workspace, user_id, role, meta()))
    return workspace


def test_role_levels_rise_from_read_only_to_owner_with_side_roles_beside_their_peers() -> None:
    assert ROLE_RANK[Role.READ_ONLY] < ROLE_RANK[Role.VIEWER] == ROLE_RANK[Role.EXECUTIVE] < ROLE_RANK[Role.ANALYST]
    assert ROLE_RANK[Role.ANALYST] < ROLE_RANK[Role.SECURITY_ADMIN] == ROLE_RANK[Role.COMPLIANCE_ADMIN]
    assert ROLE_RANK[Role.COMPLIANCE_ADMIN] < ROLE_RANK[Role.TENANT_ADMIN] < ROLE_RANK[Role.OWNER]
    assert set(ROLE_RANK) == set(Role)
    assert may_grant(Role.TENANT_ADMIN, Role.TENANT_ADMIN) and not may_grant(Role.TENANT_ADMIN, Role.OWNER)


def test_operator_provisioning_records_plan_seats_and_timezone() -> None:
    events = provision_workspace(workspace_id=WORKSPACE, slug="acme", name="Acme", organization=ORG,
                                 owner_user_id=OWNER, meta=meta(), plan=Plan.GROWTH, seats_total=25,
                                 timezone="Europe/Paris")
    provisioned = events[0]

    assert isinstance(provisioned, WorkspaceProvisioned)
    assert (provisioned.plan, provisioned.seats_total, provisioned.timezone) == (Plan.GROWTH, 25, "Europe/Paris")
    assert apply(None, events).seats_total == 25


def test_a_workspace_provisioned_without_seats_has_ten() -> None:
    workspace = workspace_with()

    assert workspace.seats_total == 10
    assert workspace.roster == {OWNER: msgspec.convert({"role": "owner"}, type(workspace.roster[OWNER]))}


def test_a_role_change_records_both_roles_and_applies() -> None:
    workspace = workspace_with((BOB, Role.VIEWER))

    events = change_member_role(workspace, BOB, Role.ANALYST, Role.TENANT_ADMIN, meta())

    assert [(type(e), e.user_id, e.from_role, e.to_role) for e in events if isinstance(e, MemberRoleChanged)] == [
        (MemberRoleChanged, BOB, Role.VIEWER, Role.ANALYST)]
    assert apply(workspace, events).roster[BOB].role is Role.ANALYST


def test_setting_the_same_role_again_records_nothing() -> None:
    workspace = workspace_with((BOB, Role.VIEWER))

    assert change_member_role(workspace, BOB, Role.VIEWER, Role.OWNER, meta()) == []


def test_nobody_grants_a_role_above_their_own() -> None:
    workspace = workspace_with((ADMIN, Role.TENANT_ADMIN), (BOB, Role.VIEWER))

    with pytest.raises(RoleAboveOwn):
        change_member_role(workspace, BOB, Role.OWNER, Role.TENANT_ADMIN, meta())
    with pytest.raises(RoleAboveOwn):
        check_invitable(workspace, Role.OWNER, Role.TENANT_ADMIN)


def test_nobody_changes_suspends_or_removes_a_member_above_their_own_level() -> None:
    workspace = workspace_with((ADMIN, Role.TENANT_ADMIN))

    for decision in (lambda: change_member_role(workspace, OWNER, Role.VIEWER, Role.TENANT_ADMIN, meta()),
                     lambda: suspend_member(workspace, OWNER, Role.TENANT_ADMIN, meta()),
                     lambda: remove_member(workspace, OWNER, Role.TENANT_ADMIN, meta())):
        with pytest.raises(RoleAboveOwn):
            decision()


def test_an_admin_may_grant_their_own_level() -> None:
    workspace = workspace_with((ADMIN, Role.TENANT_ADMIN), (BOB, Role.VIEWER))

    assert change_member_role(workspace, BOB, Role.TENANT_ADMIN, Role.TENANT_ADMIN, meta())
    check_invitable(workspace, Role.TENANT_ADMIN, Role.TENANT_ADMIN)


@pytest.mark.parametrize("decide", [
    lambda ws: remove_member(ws, OWNER, Role.OWNER, meta()),
    lambda ws: suspend_member(ws, OWNER, Role.OWNER, meta()),
    lambda ws: change_member_role(ws, OWNER, Role.ANALYST, Role.OWNER, meta()),
], ids=["remove", "suspend", "demote"])
def test_the_last_active_admin_cannot_leave_be_suspended_or_demoted(decide) -> None:  # type: ignore[no-untyped-def]
    workspace = workspace_with((BOB, Role.ANALYST))

    with pytest.raises(LastAdmin) as refused:
        decide(workspace)

    assert refused.value.code == "last_admin"


def test_a_suspended_admin_does_not_count_as_the_remaining_admin() -> None:
    workspace = workspace_with((ADMIN, Role.TENANT_ADMIN))
    workspace = apply(workspace, suspend_member(workspace, ADMIN, Role.OWNER, meta()))

    with pytest.raises(LastAdmin):
        remove_member(workspace, OWNER, Role.OWNER, meta())


def test_with_a_second_admin_the_owner_may_be_removed_and_an_owner_may_become_tenant_admin() -> None:
    workspace = workspace_with((ADMIN, Role.TENANT_ADMIN))

    assert change_member_role(workspace, OWNER, Role.TENANT_ADMIN, Role.OWNER, meta())
    removed = remove_member(workspace, OWNER, Role.OWNER, meta())

    assert removed == [MemberRemoved(**envelope(meta(), WORKSPACE, 4), user_id=OWNER, role=Role.OWNER)]
    assert OWNER not in apply(workspace, removed).members


def test_suspend_and_reactivate_toggle_the_status_and_repeat_as_no_ops() -> None:
    workspace = workspace_with((BOB, Role.ANALYST))

    suspended = apply(workspace, suspend_member(workspace, BOB, Role.OWNER, meta()))
    assert suspended.roster[BOB].status is MemberStatus.SUSPENDED
    assert suspend_member(suspended, BOB, Role.OWNER, meta()) == []
    events = reactivate_member(suspended, BOB, Role.OWNER, meta())

    assert [type(e) for e in events] == [MemberReactivated]
    assert apply(suspended, events).roster[BOB].status is MemberStatus.ACTIVE
    assert reactivate_member(workspace, BOB, Role.OWNER, meta()) == []


def test_active_memberships_never_exceed_the_seats() -> None:
    workspace = workspace_with((BOB, Role.ANALYST), seats=2)

    with pytest.raises(SeatLimit) as refused:
        add_member(workspace, CAROL, Role.VIEWER, meta())
    with pytest.raises(SeatLimit):
        check_invitable(workspace, Role.VIEWER, Role.OWNER)

    assert refused.value.code == "seat_limit"


def test_a_suspended_member_frees_a_seat_and_needs_one_to_come_back() -> None:
    workspace = workspace_with((BOB, Role.ANALYST), seats=2)
    workspace = apply(workspace, suspend_member(workspace, BOB, Role.OWNER, meta()))
    workspace = apply(workspace, add_member(workspace, CAROL, Role.VIEWER, meta()))

    with pytest.raises(SeatLimit):
        reactivate_member(workspace, BOB, Role.OWNER, meta())


def test_a_removed_member_can_join_again() -> None:
    workspace = workspace_with((BOB, Role.ANALYST))
    workspace = apply(workspace, remove_member(workspace, BOB, Role.OWNER, meta()))

    events = add_member(workspace, BOB, Role.VIEWER, meta())

    assert [(type(e), e.role) for e in events if isinstance(e, MemberAdded)] == [(MemberAdded, Role.VIEWER)]


def test_changing_someone_who_is_not_a_member_is_not_found() -> None:
    workspace = workspace_with()

    with pytest.raises(MemberNotFound):
        suspend_member(workspace, BOB, Role.OWNER, meta())


def test_an_offboarded_workspace_changes_no_more_and_offboards_once() -> None:
    workspace = workspace_with((BOB, Role.ANALYST))
    events = offboard_workspace(workspace, meta())
    offboarded = apply(workspace, events)

    assert [type(e) for e in events] == [WorkspaceOffboarded]
    assert offboard_workspace(offboarded, meta()) == []
    for decision in (lambda: add_member(offboarded, CAROL, Role.VIEWER, meta()),
                     lambda: remove_member(offboarded, BOB, Role.OWNER, meta())):
        with pytest.raises(Offboarded) as refused:
            decision()
        assert isinstance(refused.value, DomainError) and refused.value.code == "invalid_transition"
