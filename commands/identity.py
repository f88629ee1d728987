"""Identity commands: make sure a user is a member of a workspace, creating either when it is missing.

Uniqueness of workspace slugs and user emails comes from deterministic stream ids: two writers that
race to create the same one collide on the event store's primary key, and the loser reloads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import msgspec

from adapters.event_store import EventStore, IntegrityError
from adapters.ids import keyed_uuid
from domain.events import Actor, DomainEvent, Meta
from domain.identity import user as users
from domain.identity import workspace as workspaces
from domain.identity.events import UserEvent, WorkspaceEvent
from domain.identity.roles import Role
from domain.identity.workspace import Organization, Workspace
from domain.ids import OrganizationId, UserId, WorkspaceId, render

LOCAL_ORGANIZATION = Organization(id=OrganizationId(render("org", keyed_uuid("organization-slug", "local"))),
                                  slug="local", name="Local development")


class EnsureMembership(msgspec.Struct, frozen=True, kw_only=True):
    """`role` applies when the user joins an existing workspace; whoever provisions a workspace owns it."""

    email: str
    workspace_slug: str
    role: Role
    organization: Organization = LOCAL_ORGANIZATION


class Membership(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: WorkspaceId
    user_id: UserId
    role: Role = Role.VIEWER
    """The role the user holds now: the first member of a new workspace owns it, an existing member keeps theirs."""


def workspace_stream(slug: str) -> UUID:
    return keyed_uuid("workspace-slug", workspaces.clean_slug(slug))


def user_stream(email: str) -> UUID:
    return keyed_uuid("user-email", users.clean_email(email))


class IdentityCommands:
    def __init__(self, store: EventStore, *, actor: Actor,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._actor = actor
        self._clock = clock or functools.partial(datetime.now, UTC)

    def ensure_membership(self, cmd: EnsureMembership) -> Membership:
        try:
            return self._ensure_membership(cmd)
        except IntegrityError:
            # Another writer created the same user or workspace between our load and append: reload once.
            return self._ensure_membership(cmd)

    def _ensure_membership(self, cmd: EnsureMembership) -> Membership:
        workspace_uuid, user_uuid = workspace_stream(cmd.workspace_slug), user_stream(cmd.email)
        workspace_id, user_id = WorkspaceId(render("ws", workspace_uuid)), UserId(render("usr", user_uuid))
        meta = Meta(workspace_id=workspace_id, actor=self._actor, now=self._clock())
        events: list[DomainEvent] = []
        if not self._user_exists(user_uuid):
            events.append(users.register_user(user_id=user_uuid, email=cmd.email, meta=meta))
        workspace = self._workspace(workspace_uuid)
        events += self._join(workspace, workspace_uuid, cmd, user_id, meta)
        if events:
            self._store.append(events)
        if workspace is None:
            role = Role.OWNER
        else:
            role = workspace.roster[user_id].role if user_id in workspace.roster else cmd.role
        return Membership(workspace_id=workspace_id, user_id=user_id, role=role)

    def _join(self, workspace: Workspace | None, workspace_uuid: UUID, cmd: EnsureMembership, user_id: UserId,
              meta: Meta) -> list[DomainEvent]:
        if workspace is not None:
            return [*workspaces.add_member(workspace, user_id, cmd.role, meta)]
        return [*workspaces.provision_workspace(workspace_id=workspace_uuid, slug=cmd.workspace_slug,
                                                name=cmd.workspace_slug, organization=cmd.organization,
                                                owner_user_id=user_id, meta=meta)]

    def _user_exists(self, user_uuid: UUID) -> bool:
        events = [e for e in self._store.load(user_uuid) if isinstance(e, UserEvent)]
        return users.project_user(None, events) is not None

    def _workspace(self, workspace_uuid: UUID) -> Workspace | None:
        stream = self._store.load(workspace_uuid)
        events = [e for e in stream if isinstance(e, WorkspaceEvent)]
        return workspaces.project_workspace(None, events)

