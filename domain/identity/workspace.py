"""The Workspace aggregate: who belongs to it, with which role and status, and how many seats it has.

Membership decisions enforce the identity rules: nobody grants or takes away a role above their own,
active memberships never exceed the organization's seats, and a workspace keeps at least one active
tenant admin (tenant_admin or owner).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import assert_never
from uuid import UUID

import msgspec

from domain.errors import InvalidValue
from domain.events import Meta, envelope
from domain.identity.errors import LastAdmin, MemberNotFound, Offboarded, RoleAboveOwn, SeatLimit
from domain.identity.events import (
    DEFAULT_SEATS,
    AnyWorkspaceEvent,
    MemberAdded,
    MemberReactivated,
    MemberRemoved,
    MemberRoleChanged,
    MemberSuspended,
    Plan,
    WorkspaceEvent,
    WorkspaceOffboarded,
    WorkspaceProvisioned,
)
from domain.identity.roles import ADMIN_ROLES, Role, may_grant
from domain.ids import OrganizationId, UserId

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
SEATS_MAX = 100_000
TIMEZONE_MAX = 100


class Organization(msgspec.Struct, frozen=True, kw_only=True):
    id: OrganizationId
    slug: str
    name: str


class MemberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Member(msgspec.Struct, frozen=True, kw_only=True):
    role: Role
    status: MemberStatus = MemberStatus.ACTIVE


class Workspace(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    slug: str
    owner_user_id: UserId
    members: frozenset[UserId]
    """Current (not removed) members, active or suspended."""
    roster: dict[UserId, Member] = msgspec.field(default_factory=dict)
    seats_total: int = DEFAULT_SEATS
    offboarded: bool = False

    def active_count(self) -> int:
        return sum(1 for m in self.roster.values() if m.status is MemberStatus.ACTIVE)

    def active_admins(self) -> int:
        return sum(1 for m in self.roster.values() if m.status is MemberStatus.ACTIVE and m.role in ADMIN_ROLES)


def _with(workspace: Workspace, event: WorkspaceEvent, roster: dict[UserId, Member]) -> Workspace:
    return msgspec.structs.replace(workspace, version=event.originator_version, roster=roster,
                                   members=frozenset(roster))


def evolve(workspace: Workspace | None, event: AnyWorkspaceEvent) -> Workspace:
    if isinstance(event, WorkspaceProvisioned):
        seats = DEFAULT_SEATS if event.seats_total is msgspec.UNSET else event.seats_total
        return Workspace(id=event.originator_id, version=event.originator_version, slug=event.slug,
                         owner_user_id=event.owner_user_id, members=frozenset(), seats_total=seats)
    assert workspace is not None, "a workspace stream starts with WorkspaceProvisioned"
    roster = dict(workspace.roster)
    match event:
        case MemberAdded():
            roster[event.user_id] = Member(role=event.role)
        case MemberRoleChanged():
            roster[event.user_id] = msgspec.structs.replace(roster[event.user_id], role=event.to_role)
        case MemberSuspended():
            roster[event.user_id] = msgspec.structs.replace(roster[event.user_id], status=MemberStatus.SUSPENDED)
        case MemberReactivated():
            roster[event.user_id] = msgspec.structs.replace(roster[event.user_id], status=MemberStatus.ACTIVE)
        case MemberRemoved():
            roster.pop(event.user_id, None)
        case WorkspaceOffboarded():
            return msgspec.structs.replace(workspace, version=event.originator_version, offboarded=True)
        case _:
            assert_never(event)
    return _with(workspace, event, roster)


def project_workspace(workspace: Workspace | None, events: Iterable[AnyWorkspaceEvent]) -> Workspace | None:
    return functools.reduce(evolve, events, workspace)


def clean_slug(slug: str) -> str:
    """A slug is 1 to 63 lowercase letters, digits and inner hyphens, so it fits URLs and NATS subjects."""
    slug = slug.strip().lower()
    if not _SLUG.fullmatch(slug):
        raise InvalidValue("slug", "must be 1-63 lowercase letters, digits and inner hyphens")
    return slug


def clean_seats(seats_total: int) -> int:
    if not 1 <= seats_total <= SEATS_MAX:
        raise InvalidValue("seats_total", f"must be between 1 and {SEATS_MAX}")
    return seats_total


def provision_workspace(*, workspace_id: UUID, slug: str, name: str, organization: Organization,
                        owner_user_id: UserId, meta: Meta, plan: Plan | None = None,
                        seats_total: int | None = None, timezone: str | None = None) -> list[WorkspaceEvent]:
    """A workspace starts with a valid slug, a non-blank name, and its owner as the first member.

    `plan`, `seats_total` and `timezone` are recorded only when given (operator provisioning); without them
    the workspace has the defaults (free, 10 seats, UTC).
    """
    if not name.strip():
        raise InvalidValue("name", "must not be blank")
    if timezone is not None and not 0 < len(timezone) <= TIMEZONE_MAX:
        raise InvalidValue("timezone", f"must be 1-{TIMEZONE_MAX} characters")
    return [
        WorkspaceProvisioned(**envelope(meta, workspace_id, 1), organization_id=organization.id,
                             organization_slug=organization.slug, organization_name=organization.name,
                             slug=clean_slug(slug), name=name.strip(), owner_user_id=owner_user_id,
                             plan=msgspec.UNSET if plan is None else plan,
                             seats_total=msgspec.UNSET if seats_total is None else clean_seats(seats_total),
                             timezone=msgspec.UNSET if timezone is None else timezone),
        MemberAdded(**envelope(meta, workspace_id, 2), user_id=owner_user_id, role=Role.OWNER),
    ]


def _open(workspace: Workspace) -> None:
    if workspace.offboarded:
        raise Offboarded("the workspace is offboarded")


def _seat_free(workspace: Workspace) -> None:
    if workspace.active_count() >= workspace.seats_total:
        raise SeatLimit(f"all {workspace.seats_total} seats are taken", seats_total=str(workspace.seats_total))


def add_member(workspace: Workspace, user_id: UserId, role: Role, meta: Meta) -> list[WorkspaceEvent]:
    """A user is a member of a workspace at most once: adding a member again records nothing.

    A new member takes a seat, so a full workspace refuses them (`seat_limit`).
    """
    _open(workspace)
    if user_id in workspace.members:
        return []
    _seat_free(workspace)
    return [MemberAdded(**envelope(meta, workspace.id, workspace.version + 1), user_id=user_id, role=role)]


def check_invitable(workspace: Workspace, role: Role, actor_role: Role) -> None:
    """An invitation can only be sent for a role at or below the inviter's, into a workspace with a free seat."""
    _open(workspace)
    _grantable(actor_role, role)
    _seat_free(workspace)


def _grantable(actor_role: Role, role: Role) -> None:
    if not may_grant(actor_role, role):
        raise RoleAboveOwn(f"a {actor_role} cannot grant the role {role}", role=role)


def _member(workspace: Workspace, user_id: UserId, actor_role: Role) -> Member:
    """The member to change; only someone at or above the member's own level may change them."""
    _open(workspace)
    member = workspace.roster.get(user_id)
    if member is None:
        raise MemberNotFound(f"member {user_id} not found", user_id=user_id)
    if not may_grant(actor_role, member.role):
        raise RoleAboveOwn(f"a {actor_role} cannot change a {member.role}", role=member.role)
    return member


def _keeps_an_admin(workspace: Workspace, member: Member) -> None:
    """Called when `member` stops being an active admin: refuse if they are the last one."""
    if member.status is MemberStatus.ACTIVE and member.role in ADMIN_ROLES and workspace.active_admins() <= 1:
        raise LastAdmin("the workspace must keep at least one active tenant admin")


def change_member_role(workspace: Workspace, user_id: UserId, role: Role, actor_role: Role,
                       meta: Meta) -> list[WorkspaceEvent]:
    """The same role again records nothing; demoting the last active admin is refused."""
    member = _member(workspace, user_id, actor_role)
    _grantable(actor_role, role)
    if member.role == role:
        return []
    if role not in ADMIN_ROLES:
        _keeps_an_admin(workspace, member)
    return [MemberRoleChanged(**envelope(meta, workspace.id, workspace.version + 1), user_id=user_id,
                              from_role=member.role, to_role=role)]


def suspend_member(workspace: Workspace, user_id: UserId, actor_role: Role, meta: Meta) -> list[WorkspaceEvent]:
    member = _member(workspace, user_id, actor_role)
    if member.status is MemberStatus.SUSPENDED:
        return []
    _keeps_an_admin(workspace, member)
    return [MemberSuspended(**envelope(meta, workspace.id, workspace.version + 1), user_id=user_id)]


def reactivate_member(workspace: Workspace, user_id: UserId, actor_role: Role,
                      meta: Meta) -> list[WorkspaceEvent]:
    """A suspended member frees their seat; coming back takes one again."""
    member = _member(workspace, user_id, actor_role)
    if member.status is MemberStatus.ACTIVE:
        return []
    _seat_free(workspace)
    return [MemberReactivated(**envelope(meta, workspace.id, workspace.version + 1), user_id=user_id)]


def remove_member(workspace: Workspace, user_id: UserId, actor_role: Role, meta: Meta) -> list[WorkspaceEvent]:
    member = _member(workspace, user_id, actor_role)
    _keeps_an_admin(workspace, member)
    return [MemberRemoved(**envelope(meta, workspace.id, workspace.version + 1), user_id=user_id, role=member.role)]


def offboard_workspace(workspace: Workspace, meta: Meta) -> list[WorkspaceEvent]:
    """Offboarding twice records nothing the second time."""
    if workspace.offboarded:
        return []
    return [WorkspaceOffboarded(**envelope(meta, workspace.id, workspace.version + 1))]

