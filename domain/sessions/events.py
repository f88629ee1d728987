"""Session events: one stream per refresh-token family. Only SHA-256 hashes of refresh tokens are stored."""

from __future__ import annotations

from typing import ClassVar

from domain.events import DomainEvent
from domain.ids import UserId


class SessionEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "session"


class SessionStarted(SessionEvent, frozen=True, kw_only=True):
    """A sign-in (`POST /v1/auth/exchange`) in the envelope's workspace; `mfa` records a second factor."""

    user_id: UserId
    refresh_hash: str
    mfa: bool = False


class SessionRefreshed(SessionEvent, frozen=True, kw_only=True):
    """The refresh token `previous_hash` was spent; `refresh_hash` is the family's only valid one now."""

    previous_hash: str
    refresh_hash: str


class SessionRevoked(SessionEvent, frozen=True, kw_only=True):
    reason: str


AnySessionEvent = SessionStarted | SessionRefreshed | SessionRevoked
SESSION_EVENT_TYPES: tuple[type[DomainEvent], ...] = (SessionStarted, SessionRefreshed, SessionRevoked)
