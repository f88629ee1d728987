"""Identity events: workspaces, their members, and users. Additive-only, as every event."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

import msgspec

from domain.events import DomainEvent
from domain.identity.roles import Role
from domain.ids import OrganizationId, UserId


class Plan(StrEnum):
    FREE = "free"
    STARTER = "starter"
    GROWTH = "growth"
    ENTERPRISE = "enterprise"


DEFAULT_PLAN = Plan.FREE
DEFAULT_SEATS = 10


class WorkspaceEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "workspace"


class WorkspaceProvisioned(WorkspaceEvent, frozen=True, kw_only=True):
    """The organization is carried here, not in a stream of its own, until something needs to change it."""

    organization_id: OrganizationId
    organization_slug: str
    organization_name: str
    slug: str
    name: str
    owner_user_id: UserId
    # Added for operator provisioning. UNSET (absent in events stored before) reads as DEFAULT_PLAN / DEFAULT_SEATS
    # / "UTC"; UNSET keeps the stored bytes of older events unchanged.
    plan: Plan | msgspec.UnsetType = msgspec.UNSET
    seats_total: int | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET


class MemberAdded(WorkspaceEvent, frozen=True, kw_only=True):
    user_id: UserId
    role: Role


class MemberRoleChanged(WorkspaceEvent, frozen=True, kw_only=True):
    user_id: UserId
    from_role: Role
    to_role: Role


class MemberSuspended(WorkspaceEvent, frozen=True, kw_only=True):
    user_id: UserId


class MemberReactivated(WorkspaceEvent, frozen=True, kw_only=True):
    user_id: UserId


class MemberRemoved(WorkspaceEvent, frozen=True, kw_only=True):
    user_id: UserId
    role: Role
    """The role the member held, so the audit log and the bus tell who lost what without a lookup."""


class WorkspaceOffboarded(WorkspaceEvent, frozen=True, kw_only=True):
    """The client left: every membership stops granting access; the events and read models stay stored."""


class UserEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "user"


class UserRegistered(UserEvent, frozen=True, kw_only=True):
    email: str
    name: str


class UserProfileUpdated(UserEvent, frozen=True, kw_only=True):
    """The whole profile after the change (None = not set: timezone reads as "UTC", locale as "en")."""

    name: str
    avatar_url: str | None
    timezone: str | None
    locale: str | None


class InvitationEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "invitation"


class InvitationSent(InvitationEvent, frozen=True, kw_only=True):
    """Only the SHA-256 (hex) of the acceptance token is stored; the token itself is shown once."""

    email: str
    role: Role
    token_hash: str
    expires_at: datetime


class InvitationResent(InvitationEvent, frozen=True, kw_only=True):
    """A further token; the earlier ones stay valid until their own expiry (documented behaviour)."""

    token_hash: str
    expires_at: datetime


class InvitationRevoked(InvitationEvent, frozen=True, kw_only=True):
    """No token of this invitation is accepted any more."""


class InvitationAccepted(InvitationEvent, frozen=True, kw_only=True):
    user_id: UserId


class OrganizationEvent(DomainEvent, frozen=True, kw_only=True):
    """One stream per organization, keyed by its slug, so a duplicate slug collides in the event store."""

    category: ClassVar[str] = "organization"


class OrganizationProvisioned(OrganizationEvent, frozen=True, kw_only=True):
    slug: str
    name: str
    plan: Plan
    seats_total: int


class OrganizationOffboarded(OrganizationEvent, frozen=True, kw_only=True):
    """The organization's status becomes `cancelled`; its workspaces record WorkspaceOffboarded alongside."""


AnyWorkspaceEvent = (WorkspaceProvisioned | MemberAdded | MemberRoleChanged | MemberSuspended | MemberReactivated
                     | MemberRemoved | WorkspaceOffboarded)
AnyUserEvent = UserRegistered | UserProfileUpdated
AnyInvitationEvent = InvitationSent | InvitationResent | InvitationRevoked | InvitationAccepted
AnyOrganizationEvent = OrganizationProvisioned | OrganizationOffboarded
AnyIdentityEvent = AnyWorkspaceEvent | AnyUserEvent | AnyInvitationEvent | AnyOrganizationEvent
IDENTITY_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    WorkspaceProvisioned, MemberAdded, UserRegistered,
    MemberRoleChanged, MemberSuspended, MemberReactivated, MemberRemoved, WorkspaceOffboarded,
    UserProfileUpdated,
    InvitationSent, InvitationResent, InvitationRevoked, InvitationAccepted,
    OrganizationProvisioned, OrganizationOffboarded,
)
