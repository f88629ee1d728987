"""Member, invitation and profile commands: load the streams, decide with the pure domain, append atomically.

Every command returns the position of its last event, so the route can answer only once the `identity`
projection (which the per-request membership check reads) has it.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import zoneinfo
from collections.abc import Callable, Sequence
from typing import cast
from uuid import UUID

import msgspec

from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.errors import NotFound
from commands.identity import user_stream
from commands.runner import CommandRunner, Context, Decision, Result
from domain.events import Actor, ActorKind, DomainEvent, Meta
from domain.identity import invitation as invitations
from domain.identity import user as users
from domain.identity import workspace as workspaces
from domain.identity.errors import AlreadyMember, WrongWorkspace
from domain.identity.events import (
    AnyInvitationEvent,
    AnyUserEvent,
    AnyWorkspaceEvent,
    InvitationAccepted,
    InvitationEvent,
    UserEvent,
)
from domain.identity.events import WorkspaceEvent as WorkspaceEventBase
from domain.identity.invitation import Invitation
from domain.identity.roles import Role
from domain.identity.user import ProfileEdit, User
from domain.identity.workspace import MemberStatus, Workspace
from domain.ids import UserId, WorkspaceId, canonical, parse, render

TOKEN_PREFIX = "clp_inv_"
_ULID_LENGTH = 26


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


class Joined(msgspec.Struct, frozen=True, kw_only=True):
    """Who joined which workspace through which invitation (derived from the invitation stream's acceptance)."""

    workspace_id: WorkspaceId
    membership_id: str
    user_id: UserId
    role: Role
    invitation_id: str
    position: int


def joined_of(result: Result) -> Joined:
    """The answer of `accept` / `join_invited`: the invitation's role (an existing member keeps theirs)."""
    invitation = invitations.project_invitation(None, cast(list[AnyInvitationEvent], result.own(InvitationEvent)))
    accepted = result.own(InvitationAccepted)
    assert invitation is not None and accepted
    return Joined(workspace_id=invitation.workspace_id, user_id=accepted[-1].user_id, role=invitation.role,
                  membership_id=membership_id(invitation.workspace_id, accepted[-1].user_id),
                  invitation_id=render("inv", result.stream_id), position=result.position)


MemberRule = Callable[[Workspace, UserId, Meta], Sequence[DomainEvent]]


class MemberCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    # ---- members -------------------------------------------------------------------------------------------

    async def update(self, member_id: str, role: Role | None, status: MemberStatus | None, actor_role: Role,
                     caller: Caller) -> Result:
        """A role change and a status change decided together on one state and appended together: all or nothing."""
        def rule(workspace: Workspace, user: UserId, meta: Meta) -> list[DomainEvent]:
            events: list[DomainEvent] = []
            if role is not None:
                events += workspaces.change_member_role(workspace, user, role, actor_role, meta)
                workspace = workspaces.project_workspace(workspace, cast(list[AnyWorkspaceEvent], events)) or workspace
            if status is MemberStatus.SUSPENDED:
                events += workspaces.suspend_member(workspace, user, actor_role, meta)
            elif status is MemberStatus.ACTIVE:
                events += workspaces.reactivate_member(workspace, user, actor_role, meta)
            return events

        return await self._on_member(member_id, caller, rule)

    async def remove(self, member_id: str, actor_role: Role, caller: Caller) -> Result:
        return await self._on_member(member_id, caller, lambda ws, user, meta: workspaces.remove_member(
            ws, user, actor_role, meta))

    async def _on_member(self, member_id: str, caller: Caller, rule: MemberRule) -> Result:
        public = canonical("mem", member_id)

        async def deciding(context: Context) -> Decision:
            stream_id, history, workspace = await self._workspace(context, caller.workspace_id)
            user_id = next((u for u in workspace.members if membership_id(caller.workspace_id, u) == public), None)
            if public is None or user_id is None:
                raise NotFound("member", member_id)
            return Decision(stream_id, history, rule(workspace, user_id, context.meta))

        return await self._runner.run(caller, deciding)

    # ---- invitations ---------------------------------------------------------------------------------------

    async def invite(self, email: str, role: Role, actor_role: Role, caller: Caller) -> Result:
        """Role at or below the inviter's, a free seat, not already a member, no pending invitation (409).
        The acceptance token is the result's `revealed`."""
        email = users.clean_email(email)
        stream_id = invitation_stream(caller.workspace_id, email)

        async def deciding(context: Context) -> Decision:
            _, _, workspace = await self._workspace(context, caller.workspace_id)
            if UserId(render("usr", user_stream(email))) in workspace.members:
                raise AlreadyMember(f"{email} is already a member of this workspace", email=email)
            workspaces.check_invitable(workspace, role, actor_role)
            history = await context.load(stream_id, InvitationEvent)
            current = invitations.project_invitation(None, cast(list[AnyInvitationEvent], history))
            token = new_invitation_token(stream_id)
            event = invitations.send_invitation(current, invitation_id=stream_id, email=email, role=role,
                                                token_hash=token_hash(token), meta=context.meta)
            return Decision(stream_id, history, [event], revealed=token)

        return await self._runner.run(caller, deciding)

    async def resend(self, invitation_id: str, caller: Caller) -> Result:
        """A fresh token (the result's `revealed`, shown once); earlier links keep working until they expire."""
        async def deciding(context: Context) -> Decision:
            current, history = await self._invitation_for(context, invitation_id, caller)
            token = new_invitation_token(current.id)
            return Decision(current.id, history, [invitations.resend_invitation(current, token_hash(token),
                                                                                context.meta)], revealed=token)

        return await self._runner.run(caller, deciding)

    async def revoke(self, invitation_id: str, caller: Caller) -> Result:
        async def deciding(context: Context) -> Decision:
            current, history = await self._invitation_for(context, invitation_id, caller)
            return Decision(current.id, history, invitations.revoke_invitation(current, context.meta))

        return await self._runner.run(caller, deciding)

    async def accept(self, token: str, caller: Caller) -> Result:
        """The signed-in user whose email the invitation names joins its workspace with its role, once
        (`joined_of` reads the answer)."""
        user_uuid = parse("usr", caller.actor.id)

        async def deciding(context: Context) -> Decision:
            current, history = await self._invitation_of(context, token)
            user = None if user_uuid is None else await self._user(context, user_uuid)
            if user is None:
                raise NotFound("user", caller.actor.id)
            meta = msgspec.structs.replace(context.meta, workspace_id=current.workspace_id)
            return Decision(current.id, history, await self._joining(context, current, token, user, meta))

        return await self._runner.run(caller, deciding)

    async def join_invited(self, token: str, *, email: str, clerk_user_id: str, workspace_id: str | None,
                           caller: Caller) -> Result:
        """Sign-in with an invitation (the invitee may be unknown so far): register the user by `email` if
        needed, link the Clerk id if needed, accept and join, all in ONE append, so a refusal records nothing."""
        email = users.clean_email(email)
        user_uuid = user_stream(email)
        actor = Actor(kind=ActorKind.USER, id=render("usr", user_uuid))

        async def deciding(context: Context) -> Decision:
            current, history = await self._invitation_of(context, token)
            if workspace_id is not None and workspace_id != current.workspace_id:
                raise WrongWorkspace("this invitation is for another workspace than workspace_id")
            meta = msgspec.structs.replace(context.meta, workspace_id=current.workspace_id, actor=actor)
            user = await self._user(context, user_uuid)
            registered = [] if user is not None else [users.register_user(user_id=user_uuid, email=email, meta=meta)]
            user = user if user is not None else users.evolve(None, registered[0])
            linked = users.link_external_identity(user, clerk_user_id, meta)
            joining = await self._joining(context, current, token, user, meta)
            return Decision(current.id, history, [*registered, *linked, *joining])

        return await self._runner.run(caller, deciding)

    async def _invitation_of(self, context: Context, token: str) -> tuple[Invitation, list[InvitationEvent]]:
        stream_id = invitation_of_token(token)
        history = [] if stream_id is None else await context.load(stream_id, InvitationEvent)
        current = invitations.project_invitation(None, cast(list[AnyInvitationEvent], history))
        if current is None:
            raise NotFound("invitation", "token")
        return current, history

    async def _joining(self, context: Context, current: Invitation, token: str, user: User,
                       meta: Meta) -> list[DomainEvent]:
        """The accept decisions (token, pending, expiry, invitee's email, seats): acceptance and membership."""
        user_id = UserId(render("usr", user.id))
        accepted = invitations.accept_invitation(current, token_hash=token_hash(token), user_id=user_id,
                                                 user_email=user.email, meta=meta)
        _, _, workspace = await self._workspace(context, current.workspace_id)
        return [accepted, *workspaces.add_member(workspace, user_id, current.role, meta)]

    # ---- the current user ----------------------------------------------------------------------------------

    async def update_profile(self, edit: ProfileEdit, caller: Caller) -> Result:
        user_uuid = parse("usr", caller.actor.id)

        async def deciding(context: Context) -> Decision:
            history = [] if user_uuid is None else await context.load(user_uuid, UserEvent)
            user = users.project_user(None, cast(list[AnyUserEvent], history))
            if user is None or user_uuid is None:
                raise NotFound("user", caller.actor.id)
            return Decision(user_uuid, history, users.update_profile(user, edit, context.meta,
                                                                     timezones=known_timezones()))

        return await self._runner.run(caller, deciding)

    # ---- loading -------------------------------------------------------------------------------------------

    async def _workspace(self, context: Context, workspace_id: str) -> tuple[UUID, list[WorkspaceEventBase],
                                                                                 Workspace]:
        stream_id = parse("ws", workspace_id)
        history = [] if stream_id is None else await context.load(stream_id, WorkspaceEventBase)
        workspace = workspaces.project_workspace(None, cast(list[AnyWorkspaceEvent], history))
        if workspace is None or stream_id is None:
            raise NotFound("workspace", workspace_id)
        return stream_id, history, workspace

    async def _invitation_for(self, context: Context, invitation_id: str, caller: Caller
                              ) -> tuple[Invitation, list[InvitationEvent]]:
        stream_id = parse("inv", invitation_id)
        history = [] if stream_id is None else await context.load(stream_id, InvitationEvent)
        current = invitations.project_invitation(None, cast(list[AnyInvitationEvent], history))
        if current is None or current.workspace_id != caller.workspace_id:
            raise NotFound("invitation", invitation_id)
        return current, history

    async def _user(self, context: Context, user_uuid: UUID) -> User | None:
        history = await context.load(user_uuid, UserEvent)
        return users.project_user(None, cast(list[AnyUserEvent], history))
