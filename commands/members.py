"""Member, invitation and profile commands: load the streams, decide with the pure domain, append atomically.

Every command returns the position of its last event, so the route can answer only once the `identity`
projection (which the per-request membership check reads) has it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import zoneinfo
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar, cast
from uuid import UUID

import msgspec

from adapters.event_store import EventStore
from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.errors import NotFound
from commands.group_commit import ConcurrencyConflict, GroupCommitter
from commands.identity import user_stream
from domain.events import Actor, ActorKind, DomainEvent, Meta
from domain.identity import invitation as invitations
from domain.identity import user as users
from domain.identity import workspace as workspaces
from domain.identity.errors import AlreadyMember, WrongWorkspace
from domain.identity.events import AnyInvitationEvent, AnyUserEvent, AnyWorkspaceEvent, InvitationEvent, UserEvent
from domain.identity.events import WorkspaceEvent as WorkspaceEventBase
from domain.identity.invitation import Invitation
from domain.identity.roles import Role
from domain.identity.user import ProfileEdit, User
from domain.identity.workspace import MemberStatus, Workspace
from domain.ids import UserId, WorkspaceId, canonical, parse, render

MAX_ATTEMPTS = 3
TOKEN_PREFIX = "clp_inv_"
_ULID_LENGTH = 26
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def membership_id(workspace_id: str, user_id: str) -> str:
    """The contract's derived id: the same pair always names the same membership."""
    return render("mem", keyed_uuid("membership", workspace_id, user_id))


def invitation_stream(workspace_id: str, email: str) -> UUID:
    """One invitation stream per (workspace, email): one pending invitation per email is the store's key."""
    return keyed_uuid("invitation", workspace_id, users.clean_email(email))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_invitation_token(invitation_id: UUID) -> str:
    """`clp_inv_<invitation ULID>_<secret>`: the id lets accept find the stream; only the hash is stored."""
    return f"{TOKEN_PREFIX}{render('inv', invitation_id)[4:]}_{secrets.token_urlsafe(32)}"


def invitation_of_token(token: str) -> UUID | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) < len(TOKEN_PREFIX) + _ULID_LENGTH + 2:
        return None
    ulid = token[len(TOKEN_PREFIX):len(TOKEN_PREFIX) + _ULID_LENGTH]
    if token[len(TOKEN_PREFIX) + _ULID_LENGTH] != "_":
        return None
    return parse("inv", f"inv_{ulid}")


@functools.cache
def known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class Changed(msgspec.Struct, frozen=True, kw_only=True):
    """What a command did: the position to wait for (0 when nothing was recorded)."""

    position: int
    version: int = 0


class Sent(msgspec.Struct, frozen=True, kw_only=True):
    invitation: Invitation
    token: str
    position: int


class Joined(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: WorkspaceId
    membership_id: str
    user_id: UserId
    role: Role
    invitation_id: str
    position: int


class MemberCommands:
    def __init__(self, store: EventStore, committer: GroupCommitter, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._committer = committer
        self._clock = clock

    # ---- members -------------------------------------------------------------------------------------------

    async def update(self, member_id: str, role: Role | None, status: MemberStatus | None, actor_role: Role,
                     caller: Caller) -> Changed:
        """A role change and a status change decided together on one state and appended together: all or nothing."""
        def decide(workspace: Workspace, user: UserId, meta: Meta) -> list[DomainEvent]:
            events: list[DomainEvent] = []
            if role is not None:
                events += workspaces.change_member_role(workspace, user, role, actor_role, meta)
                workspace = workspaces.project_workspace(workspace, cast(list[AnyWorkspaceEvent], events)) or workspace
            if status is MemberStatus.SUSPENDED:
                events += workspaces.suspend_member(workspace, user, actor_role, meta)
            elif status is MemberStatus.ACTIVE:
                events += workspaces.reactivate_member(workspace, user, actor_role, meta)
            return events

        return await self._on_member(member_id, caller, decide)

    async def remove(self, member_id: str, actor_role: Role, caller: Caller) -> Changed:
        return await self._on_member(member_id, caller, lambda ws, user, meta: workspaces.remove_member(
            ws, user, actor_role, meta))

    async def _on_member(self, member_id: str, caller: Caller,
                         decide: Callable[[Workspace, UserId, Meta], Sequence[DomainEvent]]) -> Changed:
        public = canonical("mem", member_id)
        for _ in range(MAX_ATTEMPTS):
            workspace = await self._workspace(caller.workspace_id)
            user_id = next((u for u in workspace.members if membership_id(caller.workspace_id, u) == public), None)
            if public is None or user_id is None:
                raise NotFound("member", member_id)
            try:
                return await self._commit(decide(workspace, user_id, caller.meta(self._clock())), workspace.version)
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict("the workspace changed concurrently; retry")

    # ---- invitations ---------------------------------------------------------------------------------------

    async def invite(self, email: str, role: Role, actor_role: Role, caller: Caller) -> Sent:
        """Role at or below the inviter's, a free seat, not already a member, no pending invitation (409)."""
        email = users.clean_email(email)
        stream_id = invitation_stream(caller.workspace_id, email)
        for _ in range(MAX_ATTEMPTS):
            workspace = await self._workspace(caller.workspace_id)
            if UserId(render("usr", user_stream(email))) in workspace.members:
                raise AlreadyMember(f"{email} is already a member of this workspace", email=email)
            workspaces.check_invitable(workspace, role, actor_role)
            current = await self._invitation(stream_id)
            token = new_invitation_token(stream_id)
            event = invitations.send_invitation(current, invitation_id=stream_id, email=email, role=role,
                                                token_hash=token_hash(token), meta=caller.meta(self._clock()))
            try:
                changed = await self._commit([event], 0)
            except ConcurrencyConflict:
                continue
            return Sent(invitation=invitations.evolve(current, event), token=token, position=changed.position)
        raise ConcurrencyConflict("the invitation changed concurrently; retry")

    async def resend(self, invitation_id: str, caller: Caller) -> Sent:
        """A fresh token (shown once); earlier links keep working until they expire."""
        for _ in range(MAX_ATTEMPTS):
            current = await self._invitation_for(invitation_id, caller)
            token = new_invitation_token(current.id)
            event = invitations.resend_invitation(current, token_hash(token), caller.meta(self._clock()))
            try:
                changed = await self._commit([event], 0)
            except ConcurrencyConflict:
                continue
            return Sent(invitation=invitations.evolve(current, event), token=token, position=changed.position)
        raise ConcurrencyConflict("the invitation changed concurrently; retry")

    async def revoke(self, invitation_id: str, caller: Caller) -> Changed:
        for _ in range(MAX_ATTEMPTS):
            current = await self._invitation_for(invitation_id, caller)
            try:
                return await self._commit(invitations.revoke_invitation(current, caller.meta(self._clock())),
                                          current.version)
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict("the invitation changed concurrently; retry")

    async def invitation(self, invitation_id: str, caller: Caller) -> Invitation:
        return await self._invitation_for(invitation_id, caller)

    async def accept(self, token: str, caller: Caller) -> Joined:
        """The signed-in user whose email the invitation names joins its workspace with its role, once."""
        current = await self._invitation_of(token)
        user_uuid = parse("usr", caller.actor.id)
        user = None if user_uuid is None else await self._user(user_uuid)
        if user is None:
            raise NotFound("user", caller.actor.id)
        for _ in range(MAX_ATTEMPTS):
            meta = msgspec.structs.replace(caller.meta(self._clock()), workspace_id=current.workspace_id)
            events, joined = await self._joining(current, token, user, meta)
            try:
                changed = await self._commit(events, 0)
            except ConcurrencyConflict:
                current = await self._invitation(current.id) or current
                continue
            return msgspec.structs.replace(joined, position=changed.position)
        raise ConcurrencyConflict("the invitation changed concurrently; retry")

    async def join_invited(self, token: str, *, email: str, clerk_user_id: str, workspace_id: str | None,
                           caller: Caller) -> Joined:
        """Sign-in with an invitation (the invitee may be unknown so far): register the user by `email` if
        needed, link the Clerk id if needed, accept and join, all in ONE append, so a refusal records nothing."""
        current = await self._invitation_of(token)
        if workspace_id is not None and workspace_id != current.workspace_id:
            raise WrongWorkspace("this invitation is for another workspace than workspace_id")
        email = users.clean_email(email)
        user_uuid = user_stream(email)
        actor = Actor(kind=ActorKind.USER, id=render("usr", user_uuid))
        for _ in range(MAX_ATTEMPTS):
            meta = msgspec.structs.replace(caller.meta(self._clock()), workspace_id=current.workspace_id, actor=actor)
            user = await self._user(user_uuid)
            registered = [] if user is not None else [users.register_user(user_id=user_uuid, email=email, meta=meta)]
            user = user if user is not None else users.evolve(None, registered[0])
            linked = users.link_external_identity(user, clerk_user_id, meta)
            joining, joined = await self._joining(current, token, user, meta)
            try:
                changed = await self._commit([*registered, *linked, *joining], 0)
            except ConcurrencyConflict:
                current = await self._invitation(current.id) or current
                continue
            return msgspec.structs.replace(joined, position=changed.position)
        raise ConcurrencyConflict("the invitation or the user changed concurrently; retry")

    async def _invitation_of(self, token: str) -> Invitation:
        stream_id = invitation_of_token(token)
        current = None if stream_id is None else await self._invitation(stream_id)
        if current is None:
            raise NotFound("invitation", "token")
        return current

    async def _joining(self, current: Invitation, token: str, user: User,
                       meta: Meta) -> tuple[list[DomainEvent], Joined]:
        """The accept decisions (token, pending, expiry, invitee's email, seats) and the member it yields."""
        user_id = UserId(render("usr", user.id))
        accepted = invitations.accept_invitation(current, token_hash=token_hash(token), user_id=user_id,
                                                 user_email=user.email, meta=meta)
        workspace = await self._workspace(current.workspace_id)
        joined = workspaces.add_member(workspace, user_id, current.role, meta)
        role = workspace.roster[user_id].role if not joined and user_id in workspace.roster else current.role
        return [accepted, *joined], Joined(workspace_id=current.workspace_id, user_id=user_id, role=role,
                                           membership_id=membership_id(current.workspace_id, user_id),
                                           invitation_id=render("inv", current.id), position=0)

    # ---- the current user ----------------------------------------------------------------------------------

    async def update_profile(self, edit: ProfileEdit, caller: Caller) -> Changed:
        user_uuid = parse("usr", caller.actor.id)
        for _ in range(MAX_ATTEMPTS):
            user = None if user_uuid is None else await self._user(user_uuid)
            if user is None:
                raise NotFound("user", caller.actor.id)
            events = users.update_profile(user, edit, caller.meta(self._clock()), timezones=known_timezones())
            try:
                return await self._commit(events, user.version)
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict("the profile changed concurrently; retry")

    # ---- loading and appending -----------------------------------------------------------------------------

    async def _commit(self, events: Sequence[DomainEvent], version: int) -> Changed:
        positions = await asyncio.wrap_future(self._committer.submit(events))
        return Changed(position=max(positions, default=0),
                       version=events[-1].originator_version if events else version)

    async def _load(self, stream_id: UUID, kind: type[T]) -> list[T]:
        stored = await asyncio.to_thread(self._store.load, stream_id)
        return [e for e in stored if isinstance(e, kind)]

    async def _workspace(self, workspace_id: str) -> Workspace:
        stream_id = parse("ws", workspace_id)
        events = [] if stream_id is None else await self._load(stream_id, WorkspaceEventBase)
        workspace = workspaces.project_workspace(None, cast(list[AnyWorkspaceEvent], events))
        if workspace is None:
            raise NotFound("workspace", workspace_id)
        return workspace

    async def _invitation(self, stream_id: UUID) -> Invitation | None:
        events = await self._load(stream_id, InvitationEvent)
        return invitations.project_invitation(None, cast(list[AnyInvitationEvent], events))

    async def _invitation_for(self, invitation_id: str, caller: Caller) -> Invitation:
        stream_id = parse("inv", invitation_id)
        current = None if stream_id is None else await self._invitation(stream_id)
        if current is None or current.workspace_id != caller.workspace_id:
            raise NotFound("invitation", invitation_id)
        return current

    async def _user(self, user_uuid: UUID) -> User | None:
        events = await self._load(user_uuid, UserEvent)
        return users.project_user(None, cast(list[AnyUserEvent], events))
