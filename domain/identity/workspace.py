"""The Workspace aggregate: who belongs to it. Provisioning and membership decisions, and the fold."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import assert_never
from uuid import UUID

import msgspec

from domain.errors import InvalidValue
from domain.events import Meta, envelope
from domain.identity.events import AnyWorkspaceEvent, MemberAdded, WorkspaceEvent, WorkspaceProvisioned
from domain.identity.roles import Role
from domain.ids import OrganizationId, UserId

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class Organization(msgspec.Struct, frozen=True, kw_only=True):
    id: OrganizationId
    slug: str
    name: str


class Workspace(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    slug: str
    owner_user_id: UserId
    members: frozenset[UserId]


def evolve(workspace: Workspace | None, event: AnyWorkspaceEvent) -> Workspace:
    match event:
        case WorkspaceProvisioned():
            return Workspace(id=event.originator_id, version=event.originator_version, slug=event.slug,
                             owner_user_id=event.owner_user_id, members=frozenset())
        case MemberAdded():
            assert workspace is not None, "a workspace stream starts with WorkspaceProvisioned"
            return msgspec.structs.replace(workspace, version=event.originator_version,
                                           members=workspace.members | {event.user_id})
        case _:
            assert_never(event)


def project_workspace(workspace: Workspace | None, events: Iterable[AnyWorkspaceEvent]) -> Workspace | None:
    return functools.reduce(evolve, events, workspace)


def clean_slug(slug: str) -> str:
    """A slug is 1 to 63 lowercase letters, digits and inner hyphens, so it fits URLs and NATS subjects."""
    slug = slug.strip().lower()
    if not _SLUG.fullmatch(slug):
        raise InvalidValue("slug", "must be 1-63 lowercase letters, digits and inner hyphens")
    return slug


def provision_workspace(*, workspace_id: UUID, slug: str, name: str, organization: Organization,
                        owner_user_id: UserId, meta: Meta) -> list[WorkspaceEvent]:
    """A workspace starts with a valid slug, a non-blank name, and its owner as the first member."""
    if not name.strip():
        raise InvalidValue("name", "must not be blank")
    return [
        WorkspaceProvisioned(**envelope(meta, workspace_id, 1), organization_id=organization.id,
                             organization_slug=organization.slug, organization_name=organization.name,
                             slug=clean_slug(slug), name=name.strip(), owner_user_id=owner_user_id),
        MemberAdded(**envelope(meta, workspace_id, 2), user_id=owner_user_id, role=Role.OWNER),
    ]


def add_member(workspace: Workspace, user_id: UserId, role: Role, meta: Meta) -> list[WorkspaceEvent]:
    """A user is a member of a workspace at most once: adding a member again records nothing."""
    if user_id in workspace.members:
        return []
    return [MemberAdded(**envelope(meta, workspace.id, workspace.version + 1), user_id=user_id, role=role)]
