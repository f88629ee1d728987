"""Sign-in commands: link a Clerk identity to a user, start a session, rotate or revoke its refresh token."""

from __future__ import annotations

import hashlib
import secrets
from typing import cast

from commands.caller import Caller
from commands.errors import NotFound
from commands.group_commit import ConcurrencyConflict
from commands.runner import CommandRunner, Context, Decision, Result
from domain.errors import DomainError
from domain.identity import user as users
from domain.identity.events import AnyUserEvent, UserEvent
from domain.ids import UserId, parse
from domain.sessions import session as sessions
from domain.sessions.events import AnySessionEvent, SessionEvent, SessionRevoked
from domain.sessions.session import Session

REFRESH_PREFIX = "clp_refresh_"


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def refresh_hash(token: str) -> str:
    """What events and read models keep of a refresh token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class RefreshRejected(Exception):
    """The refresh token cannot be used (revoked family, unknown, or reused: then `position` is the revocation's)."""

    def __init__(self, reason: str, position: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


class SignInCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    async def link_identity(self, user_id: str, clerk_user_id: str, caller: Caller) -> Result:
        """Records the user's Clerk id (first sign-in matched by email); appends nothing when it is recorded."""
        stream_id = parse("usr", user_id)

        async def deciding(context: Context) -> Decision:
            history = [] if stream_id is None else await context.load(stream_id, UserEvent)
            user = users.project_user(None, cast(list[AnyUserEvent], history))
            if user is None or stream_id is None:
                raise NotFound("user", user_id)
            return Decision(stream_id, history, users.link_external_identity(user, clerk_user_id, context.meta))

        return await self._runner.run(caller, deciding)

    async def start_session(self, user_id: UserId, *, mfa: bool, caller: Caller) -> Result:
        """A new session; its refresh token is the result's `revealed`."""
        async def deciding(context: Context) -> Decision:
            session_uuid, token = context.new_uuid(), new_refresh_token()
            return Decision(session_uuid, (), [sessions.start_session(
                session_id=session_uuid, user_id=user_id, refresh_hash=refresh_hash(token), mfa=mfa,
                meta=context.meta)], revealed=token)

        return await self._runner.run(caller, deciding)

    async def rotate(self, session_id: str, presented: str, caller: Caller) -> Result:
        """Spends `presented` for a new refresh token (the result's `revealed`); a reused (rotated-away) token
        revokes the family. A concurrent refresh that spent it first makes this one a reuse on the runner's
        fresh load."""
        async def deciding(context: Context) -> Decision:
            session, history = await self._session(context, session_id)
            token = new_refresh_token()
            try:
                event = sessions.rotate_refresh_token(session, refresh_hash(presented), refresh_hash(token),
                                                      context.meta)
            except DomainError as exc:
                raise RefreshRejected(exc.code) from None
            return Decision(session.id, history, [event], revealed=token)

        try:
            rotated = await self._runner.run(caller, deciding)
        except ConcurrencyConflict:
            raise RefreshRejected("concurrent_refresh") from None
        last = rotated.stream[-1]
        if isinstance(last, SessionRevoked):
            raise RefreshRejected(last.reason, rotated.position)
        return rotated

    async def revoke(self, session_id: str, reason: str, caller: Caller) -> Result:
        async def deciding(context: Context) -> Decision:
            session, history = await self._session(context, session_id)
            return Decision(session.id, history, sessions.revoke_session(session, reason, context.meta))

        return await self._runner.run(caller, deciding)

    async def load_session(self, session_id: str) -> Session:
        stream_id = parse("ses", session_id)
        history = [] if stream_id is None else await self._runner.load(stream_id, SessionEvent)
        return _live(history)

    @staticmethod
    async def _session(context: Context, session_id: str) -> tuple[Session, list[SessionEvent]]:
        stream_id = parse("ses", session_id)
        history = [] if stream_id is None else await context.load(stream_id, SessionEvent)
        return _live(history), history


def session_of(result: Result) -> Session:
    return _live(result.own(SessionEvent))


def _live(history: list[SessionEvent]) -> Session:
    session = sessions.project_session(None, cast(list[AnySessionEvent], history))
    if session is None:
        raise RefreshRejected("unknown_session")
    return session
