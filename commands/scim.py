"""SCIM provisioning commands: an identity provider creates, deactivates and re-roles a workspace's members.

They decide with the identity domain's own membership rules (seats, last admin, nobody above their own
level) and append to the `user` and `workspace` streams, exactly as the members API does. A SCIM token acts
with the level of a tenant admin (its creator needed `members:admin`): it can neither grant nor change `owner`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast
from uuid import UUID

from commands.caller import Caller
from commands.errors import NotFound
from commands.identity import user_stream
from commands.runner import CommandRunner, Context, Decision, Result
from domain.events import DomainEvent
from domain.identity import user as users
from domain.identity import workspace as workspaces
from domain.identity.events import AnyWorkspaceEvent, UserEvent, WorkspaceEvent
from domain.identity.roles import Role
from domain.identity.workspace import Workspace
from domain.ids import UserId, parse, render

SCIM_LEVEL = Role.TENANT_ADMIN
"""The role a SCIM token acts with for "nobody grants above their own"."""
DEFAULT_ROLE = Role.VIEWER
"""The role of a provisioned user until a group (role) says otherwise, and after leaving a group."""


class AlreadyProvisioned(Exception):
    """The user is already a member of this workspace (SCIM 409 uniqueness)."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"user {user_id} already exists in this workspace")
        self.user_id = user_id


class ScimCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    async def provision(self, caller: Caller, *, email: str, name: str | None, active: bool,
                        role: Role = DEFAULT_ROLE) -> Result:
        """Register the user if they are new, then add them to the workspace (suspended when `active` is false).
        The result's stream is the user's."""
        email = users.clean_email(email)
        user_uuid = user_stream(email)
        user_id = UserId(render("usr", user_uuid))

        async def deciding(context: Context) -> Decision:
            _, _, workspace = await self._workspace(context, caller)
            if user_id in workspace.members:
                raise AlreadyProvisioned(user_id)
            history = await context.load(user_uuid, UserEvent)
            events: list[DomainEvent] = []
            if not history:
                events.append(users.register_user(user_id=user_uuid, email=email, meta=context.meta, name=name))
            joined = workspaces.add_member(workspace, user_id, role, context.meta)
            events += joined
            if not active and joined:
                after = workspaces.project_workspace(workspace, cast(list[AnyWorkspaceEvent], joined))
                assert after is not None
                events += workspaces.suspend_member(after, user_id, SCIM_LEVEL, context.meta)
            return Decision(user_uuid, history, events)

        return await self._runner.run(caller, deciding)

    async def set_active(self, caller: Caller, user_id: str, active: bool) -> Result:
        """Deprovisioning suspends the membership; re-activating brings it back. The same state again is a no-op."""
        async def deciding(context: Context) -> Decision:
            stream_id, history, workspace = await self._workspace(context, caller)
            member = self._member_id(workspace, user_id)
            change = workspaces.reactivate_member if active else workspaces.suspend_member
            return Decision(stream_id, history, change(workspace, member, SCIM_LEVEL, context.meta))

        return await self._runner.run(caller, deciding)

    async def set_roles(self, caller: Caller, changes: Sequence[tuple[str, Role]]) -> Result:
        """Give each listed member their role in one transaction (a group PATCH)."""
        async def deciding(context: Context) -> Decision:
            stream_id, history, workspace = await self._workspace(context, caller)
            events: list[WorkspaceEvent] = []
            for user_id, role in changes:
                member = self._member_id(workspace, user_id)
                changed = workspaces.change_member_role(workspace, member, role, SCIM_LEVEL, context.meta)
                events += changed
                workspace = workspaces.project_workspace(workspace, cast(list[AnyWorkspaceEvent], changed)) or workspace
            return Decision(stream_id, history, events)

        return await self._runner.run(caller, deciding)

    @staticmethod
    def _member_id(workspace: Workspace, user_id: str) -> UserId:
        uid = UserId(user_id)
        if parse("usr", user_id) is None or uid not in workspace.members:
            raise NotFound("user", user_id)
        return uid

    @staticmethod
    async def _workspace(context: Context, caller: Caller) -> tuple[UUID, list[WorkspaceEvent], Workspace]:
        stream_id = parse("ws", caller.workspace_id)
        history = [] if stream_id is None else await context.load(stream_id, WorkspaceEvent)
        workspace = workspaces.project_workspace(None, cast(list[AnyWorkspaceEvent], history))
        if workspace is None or stream_id is None:
            raise NotFound("workspace", caller.workspace_id)
        return stream_id, history, workspace
