"""SCIM provisioning commands: an identity provider creates, deactivates and re-roles a workspace's members.

They decide with the identity domain's own membership rules (seats, last admin, nobody above their own
level) and append to the `user` and `workspace` streams, exactly as the members API does. A SCIM token acts
with the level of a tenant admin (its creator needed `members:admin`): it can neither grant nor change `owner`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import cast
from uuid import UUID

import msgspec

from adapters.event_store import EventStore
from commands.caller import Caller
from commands.errors import NotFound
from commands.group_commit import ConcurrencyConflict, GroupCommitter
from commands.identity import user_stream
from domain.events import DomainEvent
from domain.identity import user as users
from domain.identity import workspace as workspaces
from domain.identity.events import AnyUserEvent, AnyWorkspaceEvent, UserEvent, WorkspaceEvent
from domain.identity.roles import Role
from domain.identity.workspace import Workspace
from domain.ids import UserId, parse, render

SCIM_LEVEL = Role.TENANT_ADMIN
"""The role a SCIM token acts with for "nobody grants above their own"."""
DEFAULT_ROLE = Role.VIEWER
"""The role of a provisioned user until a group (role) says otherwise, and after leaving a group."""
MAX_ATTEMPTS = 3


class AlreadyProvisioned(Exception):
    """The user is already a member of this workspace (SCIM 409 uniqueness)."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"user {user_id} already exists in this workspace")
        self.user_id = user_id


class Done(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    position: int


def utc_now() -> datetime:
    return datetime.now(UTC)


class ScimCommands:
    def __init__(self, store: EventStore, committer: GroupCommitter, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._committer = committer
        self._clock = clock

    async def provision(self, caller: Caller, *, email: str, name: str | None, active: bool,
                        role: Role = DEFAULT_ROLE) -> Done:
        """Register the user if they are new, then add them to the workspace (suspended when `active` is false)."""
        email = users.clean_email(email)
        user_uuid = user_stream(email)
        user_id = UserId(render("usr", user_uuid))
        for _ in range(MAX_ATTEMPTS):
            workspace = await self._workspace(caller)
            if user_id in workspace.members:
                raise AlreadyProvisioned(user_id)
            meta = caller.meta(self._clock())
            events: list[DomainEvent] = []
            if not await self._load_user(user_uuid):
                events.append(users.register_user(user_id=user_uuid, email=email, meta=meta, name=name))
            joined = workspaces.add_member(workspace, user_id, role, meta)
            events += joined
            if not active and joined:
                after = workspaces.project_workspace(workspace, cast(list[AnyWorkspaceEvent], joined))
                assert after is not None
                events += workspaces.suspend_member(after, user_id, SCIM_LEVEL, meta)
            try:
                return await self._commit(user_id, events)
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict("the workspace changed concurrently; retry")

    async def set_active(self, caller: Caller, user_id: str, active: bool) -> Done:
        """Deprovisioning suspends the membership; re-activating brings it back. The same state again is a no-op."""
        return await self._on_member(caller, user_id, lambda ws, uid, meta: (
            workspaces.reactivate_member(ws, uid, SCIM_LEVEL, meta) if active
            else workspaces.suspend_member(ws, uid, SCIM_LEVEL, meta)))

    async def set_roles(self, caller: Caller, changes: Sequence[tuple[str, Role]]) -> int:
        """Give each listed member their role in one transaction (a group PATCH); returns the position."""
        for _ in range(MAX_ATTEMPTS):
            workspace = await self._workspace(caller)
            meta = caller.meta(self._clock())
            events: list[WorkspaceEvent] = []
            for user_id, role in changes:
                member = self._member_id(workspace, user_id)
                changed = workspaces.change_member_role(workspace, member, role, SCIM_LEVEL, meta)
                events += changed
                workspace = workspaces.project_workspace(workspace, cast(list[AnyWorkspaceEvent], changed)) or workspace
            try:
                return (await self._commit("", events)).position
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict("the workspace changed concurrently; retry")

    async def _on_member(self, caller: Caller, user_id: str, decide: Callable[..., Sequence[WorkspaceEvent]]) -> Done:
        for _ in range(MAX_ATTEMPTS):
            workspace = await self._workspace(caller)
            member = self._member_id(workspace, user_id)
            try:
                return await self._commit(member, decide(workspace, member, caller.meta(self._clock())))
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict("the workspace changed concurrently; retry")

    @staticmethod
    def _member_id(workspace: Workspace, user_id: str) -> UserId:
        uid = UserId(user_id)
        if parse("usr", user_id) is None or uid not in workspace.members:
            raise NotFound("user", user_id)
        return uid

    async def _workspace(self, caller: Caller) -> Workspace:
        stream_id = parse("ws", caller.workspace_id)
        stored = [] if stream_id is None else await asyncio.to_thread(self._store.load, stream_id)
        events = cast(list[AnyWorkspaceEvent], [e for e in stored if isinstance(e, WorkspaceEvent)])
        workspace = workspaces.project_workspace(None, events)
        if workspace is None:
            raise NotFound("workspace", caller.workspace_id)
        return workspace

    async def _load_user(self, user_uuid: UUID) -> list[AnyUserEvent]:
        stored = await asyncio.to_thread(self._store.load, user_uuid)
        return cast(list[AnyUserEvent], [e for e in stored if isinstance(e, UserEvent)])

    async def _commit(self, user_id: str, events: Sequence[DomainEvent]) -> Done:
        positions = await asyncio.wrap_future(self._committer.submit(events))
        return Done(user_id=user_id, position=max(positions, default=0))
