"""The User aggregate: a global identity keyed by email. Registration and the fold."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import assert_never
from uuid import UUID

import msgspec

from domain.errors import InvalidValue
from domain.events import Meta, envelope
from domain.identity.events import AnyUserEvent, UserRegistered

EMAIL_MAX = 254


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    email: str
    name: str


def evolve(user: User | None, event: AnyUserEvent) -> User:
    match event:
        case UserRegistered():
            return User(id=event.originator_id, version=event.originator_version, email=event.email,
                        name=event.name)
        case _:
            assert_never(event)


def project_user(user: User | None, events: Iterable[AnyUserEvent]) -> User | None:
    return functools.reduce(evolve, events, user)


def clean_email(email: str) -> str:
    """An email is `local@domain` with no blanks; it is compared in lower case, so it names one user."""
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in email):
        raise InvalidValue("email", "must look like name@example.com")
    if len(email) > EMAIL_MAX:
        raise InvalidValue("email", f"must be at most {EMAIL_MAX} characters")
    return email


def register_user(*, user_id: UUID, email: str, meta: Meta, name: str | None = None) -> UserRegistered:
    """A user registers with a valid email; without a name, the email's local part stands in for it."""
    email = clean_email(email)
    display = (name or "").strip() or email.partition("@")[0]
    return UserRegistered(**envelope(meta, user_id, 1), email=email, name=display)
