"""Identity commands: make sure a user is a member of a workspace, creating either when it is missing.

Uniqueness of workspace slugs and user emails comes from deterministic stream ids: two writers that
race to create the same one collide on the event store's primary key, and the loser decides again on a fresh load.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import cast
from uuid import UUID

import msgspec

from adapters.event_store import EventStore
from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.runner import Context, Decision, run_blocking, utc_now
from domain.events import Actor, DomainEvent, Meta
from domain.identity import user as users
from domain.identity import workspace as workspaces
from domain.identity.events import AnyUserEvent, AnyWorkspaceEvent, UserEvent, WorkspaceEvent
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
    """Synchronous, for operator tools and test fixtures: each command runs through the command runner
    (commands/runner.py `run_blocking`), which also retries when another writer created the user or the workspace
    between our load and our append."""

    def __init__(self, store: EventStore, *, actor: Actor,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._actor = actor
        self._clock = clock or utc_now

    def ensure_membership(self, cmd: EnsureMembership) -> Membership:
        workspace_uuid, user_uuid = workspace_stream(cmd.workspace_slug), user_stream(cmd.email)
        workspace_id, user_id = WorkspaceId(render("ws", workspace_uuid)), UserId(render("usr", user_uuid))

        async def deciding(context: Context) -> Decision:
            events: list[DomainEvent] = []
            if users.project_user(None, cast(list[AnyUserEvent], await context.load(user_uuid, UserEvent))) is None:
                events.append(users.register_user(user_id=user_uuid, email=cmd.email, meta=context.meta))
            history = await context.load(workspace_uuid, WorkspaceEvent)
            workspace = workspaces.project_workspace(None, cast(list[AnyWorkspaceEvent], history))
            events += self._join(workspace, workspace_uuid, cmd, user_id, context.meta)
            return Decision(workspace_uuid, history, events)

        caller = Caller(workspace_id=workspace_id, actor=self._actor)
        result = run_blocking(self._store, caller, deciding, clock=self._clock)
        workspace = workspaces.project_workspace(None, cast(list[AnyWorkspaceEvent], result.own(WorkspaceEvent)))
        assert workspace is not None
        return Membership(workspace_id=workspace_id, user_id=user_id, role=workspace.roster[user_id].role)

    @staticmethod
    def _join(workspace: Workspace | None, workspace_uuid: UUID, cmd: EnsureMembership, user_id: UserId,
              meta: Meta) -> list[DomainEvent]:
        if workspace is not None:
            return [*workspaces.add_member(workspace, user_id, cmd.role, meta)]
        return [*workspaces.provision_workspace(workspace_id=workspace_uuid, slug=cmd.workspace_slug,
                                                name=cmd.workspace_slug, organization=cmd.organization,
                                                owner_user_id=user_id, meta=meta)]
