"""Sign-in commands: link a Clerk identity to a user, start a session, rotate or revoke its refresh token."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import cast

import msgspec

from adapters.event_store import EventStore
from adapters.ids import new_uuid
from commands.caller import Caller
from commands.errors import NotFound
from commands.group_commit import ConcurrencyConflict, GroupCommitter
from domain.errors import DomainError
from domain.events import DomainEvent
from domain.identity import user as users
from domain.identity.events import AnyUserEvent, UserEvent
from domain.ids import SessionId, UserId, parse, render
from domain.sessions import session as sessions
from domain.sessions.events import AnySessionEvent, SessionEvent, SessionRefreshed, SessionRevoked
from domain.sessions.session import Session

REFRESH_PREFIX = "clp_refresh_"
MAX_ATTEMPTS = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def refresh_hash(token: str) -> str:
    """What events and read models keep of a refresh token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class StartedSession(msgspec.Struct, frozen=True, kw_only=True):
    session_id: SessionId
    refresh_token: str
    position: int


class RotatedSession(msgspec.Struct, frozen=True, kw_only=True):
    session: Session
    refresh_token: str
    position: int


class RefreshRejected(Exception):
    """The refresh token cannot be used (revoked family, unknown, or reused: then `position` is the revocation's)."""

    def __init__(self, reason: str, position: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


class SignInCommands:
    def __init__(self, store: EventStore, committer: GroupCommitter, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._committer = committer
        self._clock = clock

    async def link_identity(self, user_id: str, clerk_user_id: str, caller: Caller) -> int:
        """Records the user's Clerk id (first sign-in matched by email); 0 when it was already recorded."""
        stream_id = parse("usr", user_id)
        if stream_id is None:
            raise NotFound("user", user_id)
        stored = await asyncio.to_thread(self._store.load, stream_id)
        events = cast(list[AnyUserEvent], [e for e in stored if isinstance(e, UserEvent)])
        user = users.project_user(None, events)
        if user is None:
            raise NotFound("user", user_id)
        return await self._append(users.link_external_identity(user, clerk_user_id, caller.meta(self._clock())))

    async def start_session(self, user_id: UserId, *, mfa: bool, caller: Caller) -> StartedSession:
        session_uuid, token = new_uuid(), new_refresh_token()
        event = sessions.start_session(session_id=session_uuid, user_id=user_id, refresh_hash=refresh_hash(token),
                                       mfa=mfa, meta=caller.meta(self._clock()))
        position = await self._append([event])
        return StartedSession(session_id=SessionId(render("ses", session_uuid)), refresh_token=token,
                              position=position)

    async def rotate(self, session_id: str, presented: str, caller: Caller) -> RotatedSession:
        """Spends `presented` for a new refresh token; a reused (rotated-away) token revokes the family."""
        for _ in range(MAX_ATTEMPTS):
            session = await self.load_session(session_id)
            token = new_refresh_token()
            try:
                event = sessions.rotate_refresh_token(session, refresh_hash(presented), refresh_hash(token),
                                                      caller.meta(self._clock()))
            except DomainError as exc:
                raise RefreshRejected(exc.code) from None
            try:
                position = await self._append([event])
            except ConcurrencyConflict:
                continue  # a concurrent refresh spent it first: reload, and this one is now a reuse
            if isinstance(event, SessionRevoked):
                raise RefreshRejected(event.reason, position)
            assert isinstance(event, SessionRefreshed)
            return RotatedSession(session=sessions.evolve(session, event), refresh_token=token, position=position)
        raise RefreshRejected("concurrent_refresh")

    async def revoke(self, session_id: str, reason: str, caller: Caller) -> int:
        session = await self.load_session(session_id)
        return await self._append(sessions.revoke_session(session, reason, caller.meta(self._clock())))

    async def load_session(self, session_id: str) -> Session:
        stream_id = parse("ses", session_id)
        stored = [] if stream_id is None else await asyncio.to_thread(self._store.load, stream_id)
        events = cast(list[AnySessionEvent], [e for e in stored if isinstance(e, SessionEvent)])
        session = sessions.project_session(None, events)
        if session is None:
            raise RefreshRejected("unknown_session")
        return session

    async def _append(self, events: Sequence[DomainEvent]) -> int:
        if not events:
            return 0
        positions = await asyncio.wrap_future(self._committer.submit(events))
        return max(positions, default=0)

