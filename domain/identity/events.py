"""Identity events: workspaces, their members, and users. Additive-only, as every event."""

from __future__ import annotations

from typing import ClassVar

from domain.events import DomainEvent
from domain.identity.roles import Role
from domain.ids import OrganizationId, UserId


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


class MemberAdded(WorkspaceEvent, frozen=True, kw_only=True):
    user_id: UserId
    role: Role


class UserEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "user"


class UserRegistered(UserEvent, frozen=True, kw_only=True):
    email: str
    name: str


class UserExternalIdentityLinked(UserEvent, frozen=True, kw_only=True):
    """The user signed in through Clerk for the first time (matched by email): later sign-ins match `sub`."""

    clerk_user_id: str


AnyWorkspaceEvent = WorkspaceProvisioned | MemberAdded
AnyUserEvent = UserRegistered | UserExternalIdentityLinked
AnyIdentityEvent = WorkspaceProvisioned | MemberAdded | UserRegistered | UserExternalIdentityLinked
IDENTITY_EVENT_TYPES: tuple[type[DomainEvent], ...] = (WorkspaceProvisioned, MemberAdded, UserRegistered,
                                                       UserExternalIdentityLinked)
