"""The User aggregate: a global identity keyed by email. Registration and the fold."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import assert_never
from uuid import UUID

import msgspec

from domain.errors import DomainError, InvalidValue
from domain.events import Meta, envelope
from domain.identity.events import AnyUserEvent, UserExternalIdentityLinked, UserRegistered

EMAIL_MAX = 254


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    email: str
    name: str
    clerk_user_id: str | None = None


class ExternalIdentityConflict(DomainError):
    code = "external_identity_conflict"


def evolve(user: User | None, event: AnyUserEvent) -> User:
    match event:
        case UserRegistered():
            return User(id=event.originator_id, version=event.originator_version, email=event.email,
                        name=event.name)
        case UserExternalIdentityLinked():
            assert user is not None, "a user stream starts with UserRegistered"
            return msgspec.structs.replace(user, version=event.originator_version, clerk_user_id=event.clerk_user_id)
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


def link_external_identity(user: User, clerk_user_id: str, meta: Meta) -> list[UserExternalIdentityLinked]:
    """A user has at most one Clerk identity: linking the same one again records nothing, another one is refused."""
    if user.clerk_user_id == clerk_user_id:
        return []
    if user.clerk_user_id is not None:
        raise ExternalIdentityConflict("this user is already linked to another Clerk identity")
    return [UserExternalIdentityLinked(**envelope(meta, user.id, user.version + 1), clerk_user_id=clerk_user_id)]
