"""The ApiToken aggregate: one stream per token (personal, service-account or SCIM). Decisions and the fold.

Secrets are generated and hashed outside (adapters); the domain sees only their SHA-256 hex.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import assert_never
from uuid import UUID

import msgspec

from domain.credentials.events import AnyApiTokenEvent, ApiTokenCreated, ApiTokenRevoked, ApiTokenRotated, TokenKind
from domain.credentials.grants import SCIM_TOKEN_SCOPES, Grant, require_within
from domain.errors import InvalidTransition, InvalidValue
from domain.events import Meta, envelope
from domain.ids import WorkspaceId

NAME_MAX = 100


class TokenStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class ApiToken(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    workspace_id: WorkspaceId
    version: int
    kind: TokenKind
    owner_id: str | None
    name: str
    scopes: tuple[str, ...]
    status: TokenStatus
    expires_at: datetime | None


def evolve(token: ApiToken | None, event: AnyApiTokenEvent) -> ApiToken:
    match event:
        case ApiTokenCreated():
            return ApiToken(id=event.originator_id, workspace_id=event.workspace_id,
                            version=event.originator_version, kind=event.kind, owner_id=event.owner_id,
                            name=event.name, scopes=event.scopes, status=TokenStatus.ACTIVE,
                            expires_at=event.expires_at)
        case ApiTokenRotated():
            assert token is not None, "a token stream starts with ApiTokenCreated"
            return msgspec.structs.replace(token, version=event.originator_version)
        case ApiTokenRevoked():
            assert token is not None, "a token stream starts with ApiTokenCreated"
            return msgspec.structs.replace(token, version=event.originator_version, status=TokenStatus.REVOKED)
        case _:
            assert_never(event)


def project_token(token: ApiToken | None, events: Iterable[AnyApiTokenEvent]) -> ApiToken | None:
    return functools.reduce(evolve, events, token)


def clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidValue("name", "must not be blank")
    if len(name) > NAME_MAX:
        raise InvalidValue("name", f"must be at most {NAME_MAX} characters")
    return name


def is_live(token: ApiToken, now: datetime) -> bool:
    """Active and not expired: the only tokens that authenticate, rotate, or hold their name."""
    return token.status == TokenStatus.ACTIVE and (token.expires_at is None or token.expires_at > now)


def create_token(*, token_id: UUID, meta: Meta, kind: TokenKind, owner_id: str | None, name: str,
                 scopes: tuple[str, ...], secret_hash: str, expires_at: datetime | None,
                 grant: Grant) -> ApiTokenCreated:
    """A token has a non-blank name, cleaned scopes, an expiry (if any) in the future, and never more than the
    credential making it (`grant`: scopes and lifetime; a SCIM token counts as holding SCIM_TOKEN_SCOPES)."""
    if expires_at is not None and expires_at <= meta.now:
        raise InvalidValue("expires_at", "must be in the future")
    require_within(grant, SCIM_TOKEN_SCOPES if kind is TokenKind.SCIM else scopes, expires_at)
    return ApiTokenCreated(**envelope(meta, token_id, 1), kind=kind, owner_id=owner_id, name=clean_name(name),
                           scopes=scopes, secret_hash=secret_hash, expires_at=expires_at)


def rotate_token(token: ApiToken, secret_hash: str, meta: Meta, grant: Grant) -> ApiTokenRotated:
    """Only a live token rotates: a revoked one is never reactivated, an expired one stays expired. A new secret
    is a new credential: the rotating one must hold all of the token's scopes and outlive it (`grant`)."""
    if not is_live(token, meta.now):
        raise InvalidTransition("only an active, unexpired token can be rotated", status=token.status.value)
    require_within(grant, token.scopes, token.expires_at)
    return ApiTokenRotated(**envelope(meta, token.id, token.version + 1), secret_hash=secret_hash)


def revoke_token(token: ApiToken, meta: Meta, reason: str = "revoked") -> list[ApiTokenRevoked]:
    """Revoking is final; revoking a revoked token again records nothing."""
    if token.status == TokenStatus.REVOKED:
        return []
    return [ApiTokenRevoked(**envelope(meta, token.id, token.version + 1), reason=reason)]
