"""Credential events: API tokens (personal, service-account and SCIM) and service accounts. Additive-only.

Token events carry only the SHA-256 hex of a secret, never the secret itself.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

import msgspec

from domain.events import DomainEvent
from domain.identity.roles import Role


class TokenKind(StrEnum):
    PERSONAL = "personal"
    SERVICE_ACCOUNT = "service_account"
    SCIM = "scim"


class ApiTokenEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "api_token"


class ApiTokenCreated(ApiTokenEvent, frozen=True, kw_only=True):
    """`owner_id` is the user (usr_) or service account (sa_) the token acts as; None for a SCIM token."""

    kind: TokenKind
    owner_id: str | None
    name: str
    scopes: tuple[str, ...]
    secret_hash: str
    expires_at: datetime | None = None


class ApiTokenRotated(ApiTokenEvent, frozen=True, kw_only=True):
    secret_hash: str


class ApiTokenRevoked(ApiTokenEvent, frozen=True, kw_only=True):
    """`reason`: `revoked` (by a person) or `service_account_deleted`."""

    reason: str = "revoked"


class ServiceAccountEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "service_account"


class ServiceAccountCreated(ServiceAccountEvent, frozen=True, kw_only=True):
    name: str
    description: str
    role: Role


class ServiceAccountUpdated(ServiceAccountEvent, frozen=True, kw_only=True):
    """Only the changed fields are set."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    role: Role | msgspec.UnsetType = msgspec.UNSET


class ServiceAccountDeleted(ServiceAccountEvent, frozen=True, kw_only=True):
    pass


AnyApiTokenEvent = ApiTokenCreated | ApiTokenRotated | ApiTokenRevoked
AnyServiceAccountEvent = ServiceAccountCreated | ServiceAccountUpdated | ServiceAccountDeleted
AnyCredentialEvent = AnyApiTokenEvent | AnyServiceAccountEvent
CREDENTIAL_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ApiTokenCreated, ApiTokenRotated, ApiTokenRevoked,
    ServiceAccountCreated, ServiceAccountUpdated, ServiceAccountDeleted,
)
