"""Request and response bodies of members, invitations, roles and the current user (api.md B, docs §12)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from api.core.input_policy import RequestBody
from domain.identity.roles import Role

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^\s*[^\s@][^\s]*@[^\s@]+\s*$",
                                    description="name@example.com; compared in lower case")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
AvatarUrl = Annotated[str, msgspec.Meta(max_length=2048)]
Timezone = Annotated[str, msgspec.Meta(max_length=100, examples=["Europe/Paris"])]
Locale = Annotated[str, msgspec.Meta(max_length=20, examples=["en-GB"])]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]



class MemberStatusInput(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class UpdateMemberRequest(RequestBody, kw_only=True):
    """`role` needs `members:write`; `status` (suspend / reactivate) needs `members:admin`."""

    role: Role | msgspec.UnsetType = msgspec.UNSET
    status: MemberStatusInput | msgspec.UnsetType = msgspec.UNSET


class MemberView(msgspec.Struct, kw_only=True):
    id: str
    user_id: str
    email: str
    name: str
    avatar_url: str | None
    role: Role
    status: str
    """`active` or `suspended` (removed members are no longer listed)."""
    joined_at: datetime
    updated_at: datetime


class InviteRequest(RequestBody, kw_only=True):
    email: Email
    role: Role


class AcceptRequest(RequestBody, kw_only=True):
    token: Token


class InvitationView(msgspec.Struct, kw_only=True):
    id: str
    email: str
    role: Role
    status: str
    """`pending`, `accepted` or `revoked`; a pending invitation whose links all lapsed has `expired: true`."""
    expires_at: datetime
    """When the newest link expires (earlier links of a resent invitation keep their own 7 days)."""
    expired: bool
    invited_by: str
    accepted_user_id: str | None
    created_at: datetime
    updated_at: datetime


class InvitationSent(InvitationView, kw_only=True):
    """The created (or resent) invitation, with its acceptance token: shown this once, never again."""

    token: str
    accept_url: str


class MembershipJoined(msgspec.Struct, kw_only=True):
    membership_id: str
    workspace_id: str
    user_id: str
    role: Role
    invitation_id: str


class RoleView(msgspec.Struct, kw_only=True):
    role: Role
    label: str
    rank: int
    """Permission level: a member may grant roles at or below their own rank."""
    scopes: list[str]


class RoleList(msgspec.Struct, kw_only=True):
    data: list[RoleView]


class MeView(msgspec.Struct, kw_only=True):
    """GET/PATCH /v1/users/me (docs §12.1): all but id, email and name may be null."""

    id: str
    email: str
    name: str
    workspace_id: str | None
    avatar_url: str | None
    clerk_user_id: str | None
    created_at: datetime | None
    timezone: str | None
    locale: str | None
    role: str | None
    membership_id: str | None


class UpdateMeRequest(RequestBody, kw_only=True):
    """Every field optional. `null` clears avatar_url, resets timezone to UTC and locale to en; `name: null`
    leaves the name as it is (a user always has one)."""

    name: Name | None | msgspec.UnsetType = msgspec.UNSET
    avatar_url: AvatarUrl | None | msgspec.UnsetType = msgspec.UNSET
    timezone: Timezone | None | msgspec.UnsetType = msgspec.UNSET
    locale: Locale | None | msgspec.UnsetType = msgspec.UNSET
