"""The Session aggregate (a refresh-token family): start, rotate, revoke, and the fold."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import assert_never
from uuid import UUID

import msgspec

from domain.errors import DomainError, InvalidValue
from domain.events import Meta, envelope
from domain.ids import UserId, WorkspaceId
from domain.sessions.events import AnySessionEvent, SessionEvent, SessionRefreshed, SessionRevoked, SessionStarted

REFRESH_TOKEN_REUSE = "refresh_token_reuse"
SESSION_LIFETIME = timedelta(days=30)
"""A family refreshes for at most this long after sign-in; then the user signs in again."""
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Session(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    workspace_id: WorkspaceId
    user_id: UserId
    active: bool
    refresh_hash: str
    previous_hashes: frozenset[str]
    mfa: bool
    started_at: datetime


class SessionNotActive(DomainError):
    code = "session_revoked"


class SessionExpired(DomainError):
    code = "session_expired"


class UnknownRefreshToken(DomainError):
    code = "unknown_refresh_token"


def evolve(session: Session | None, event: AnySessionEvent) -> Session:
    match event:
        case SessionStarted():
            return Session(id=event.originator_id, version=event.originator_version, workspace_id=event.workspace_id,
                           user_id=event.user_id, active=True, refresh_hash=event.refresh_hash,
                           previous_hashes=frozenset(), mfa=event.mfa, started_at=event.occurred_at)
        case SessionRefreshed():
            assert session is not None, "a session stream starts with SessionStarted"
            return msgspec.structs.replace(session, version=event.originator_version, refresh_hash=event.refresh_hash,
                                           previous_hashes=session.previous_hashes | {event.previous_hash})
        case SessionRevoked():
            assert session is not None, "a session stream starts with SessionStarted"
            return msgspec.structs.replace(session, version=event.originator_version, active=False)
        case _:
            assert_never(event)


def project_session(session: Session | None, events: Iterable[AnySessionEvent]) -> Session | None:
    return functools.reduce(evolve, events, session)


def _hash(field: str, value: str) -> str:
    """Only a SHA-256 hex digest may be stored: a raw refresh token in an event would be a leaked secret."""
    if not _SHA256_HEX.fullmatch(value):
        raise InvalidValue(field, "must be a SHA-256 hex digest")
    return value


def start_session(*, session_id: UUID, user_id: UserId, refresh_hash: str, mfa: bool, meta: Meta) -> SessionStarted:
    """A session starts with the hash of its first refresh token."""
    return SessionStarted(**envelope(meta, session_id, 1), user_id=user_id,
                          refresh_hash=_hash("refresh_hash", refresh_hash), mfa=mfa)


def rotate_refresh_token(session: Session, presented_hash: str, new_hash: str, meta: Meta) -> SessionEvent:
    """Only the newest refresh token rotates; presenting one already rotated away revokes the whole family
    (someone else holds a copy), so the caller gets SessionRevoked back instead of SessionRefreshed."""
    if not session.active:
        raise SessionNotActive("the session was revoked")
    if meta.now - session.started_at > SESSION_LIFETIME:
        raise SessionExpired("the session is older than its lifetime; sign in again")
    at = envelope(meta, session.id, session.version + 1)
    if presented_hash == session.refresh_hash:
        return SessionRefreshed(**at, previous_hash=presented_hash, refresh_hash=_hash("refresh_hash", new_hash))
    if presented_hash in session.previous_hashes:
        return SessionRevoked(**at, reason=REFRESH_TOKEN_REUSE)
    raise UnknownRefreshToken("the refresh token does not belong to this session")


def revoke_session(session: Session, reason: str, meta: Meta) -> list[SessionEvent]:
    """Revoking an already revoked session records nothing."""
    if not session.active:
        return []
    return [SessionRevoked(**envelope(meta, session.id, session.version + 1), reason=reason)]
