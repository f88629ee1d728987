"""The User aggregate: a global identity keyed by email. Registration, the profile, and the fold."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import assert_never
from uuid import UUID

import msgspec

from domain.errors import InvalidValue
from domain.events import Meta, envelope
from domain.identity.events import AnyUserEvent, UserProfileUpdated, UserRegistered

EMAIL_MAX = 254
NAME_MAX = 200
AVATAR_URL_MAX = 2048
TIMEZONE_MAX = 100
LOCALE_MAX = 20
DEFAULT_TIMEZONE = "UTC"
DEFAULT_LOCALE = "en"

# BCP 47 language tag (RFC 5646), the common shapes: language, optional script, region and variants,
# extensions and a private-use part (`en`, `en-US`, `zh-Hant-TW`, `de-CH-1996`, `en-US-x-twain`).
_BCP47 = re.compile(
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})"
    r"(?:-[a-z]{4})?"
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"
    r"(?:-[0-9a-wy-z](?:-[a-z0-9]{2,8})+)*"
    r"(?:-x(?:-[a-z0-9]{1,8})+)?"
    r"|x(?:-[a-z0-9]{1,8})+",
    re.IGNORECASE,
)


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    email: str
    name: str
    avatar_url: str | None = None
    timezone: str | None = None
    locale: str | None = None


class ProfileEdit(msgspec.Struct, frozen=True, kw_only=True):
    """A requested change; UNSET fields are left as they are, None clears an optional field."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    avatar_url: str | None | msgspec.UnsetType = msgspec.UNSET
    timezone: str | None | msgspec.UnsetType = msgspec.UNSET
    locale: str | None | msgspec.UnsetType = msgspec.UNSET


def evolve(user: User | None, event: AnyUserEvent) -> User:
    match event:
        case UserRegistered():
            return User(id=event.originator_id, version=event.originator_version, email=event.email,
                        name=event.name)
        case UserProfileUpdated():
            assert user is not None, "a user stream starts with UserRegistered"
            return msgspec.structs.replace(user, version=event.originator_version, name=event.name,
                                           avatar_url=event.avatar_url, timezone=event.timezone,
                                           locale=event.locale)
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


def clean_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidValue("name", f"must be 1-{NAME_MAX} characters")
    return name


def clean_avatar_url(url: str) -> str:
    if len(url) > AVATAR_URL_MAX:
        raise InvalidValue("avatar_url", f"must be at most {AVATAR_URL_MAX} characters")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest or any(c.isspace() for c in url):
        raise InvalidValue("avatar_url", "must be an absolute http(s) URL")
    return url


def clean_timezone(timezone: str, known: frozenset[str]) -> str:
    """An IANA zone name from `known` (the caller supplies the tz database; the domain reads no files)."""
    if len(timezone) > TIMEZONE_MAX:
        raise InvalidValue("timezone", f"must be at most {TIMEZONE_MAX} characters")
    if timezone not in known:
        raise InvalidValue("timezone", "must be an IANA time zone such as Europe/Paris or UTC")
    return timezone


def clean_locale(locale: str) -> str:
    if len(locale) > LOCALE_MAX:
        raise InvalidValue("locale", f"must be at most {LOCALE_MAX} characters")
    if not _BCP47.fullmatch(locale):
        raise InvalidValue("locale", "must be a BCP 47 language tag such as en or pt-BR")
    return locale


def update_profile(user: User, edit: ProfileEdit, meta: Meta, *, timezones: frozenset[str]) -> list[UserProfileUpdated]:
    """Validated profile change; a PATCH that changes nothing records nothing. `name` cannot be cleared."""
    name = user.name if edit.name is msgspec.UNSET else clean_name(edit.name)
    avatar_url = user.avatar_url if edit.avatar_url is msgspec.UNSET else (
        None if edit.avatar_url is None else clean_avatar_url(edit.avatar_url))
    timezone = user.timezone if edit.timezone is msgspec.UNSET else (
        None if edit.timezone is None else clean_timezone(edit.timezone, timezones))
    locale = user.locale if edit.locale is msgspec.UNSET else (
        None if edit.locale is None else clean_locale(edit.locale))
    if (name, avatar_url, timezone, locale) == (user.name, user.avatar_url, user.timezone, user.locale):
        return []
    return [UserProfileUpdated(**envelope(meta, user.id, user.version + 1), name=name, avatar_url=avatar_url,
                               timezone=timezone, locale=locale)]
