"""Credential read-model rows and the pure fold that builds them: the projector and the API share it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import assert_never

import msgspec

from domain.credentials.events import (
    AnyApiTokenEvent,
    AnyServiceAccountEvent,
    ApiTokenCreated,
    ApiTokenRevoked,
    ApiTokenRotated,
    ServiceAccountCreated,
    ServiceAccountDeleted,
    ServiceAccountUpdated,
)
from domain.ids import render


class TokenRow(msgspec.Struct, frozen=True, kw_only=True):
    """One `api_tokens` row. `secret_hash` never leaves the server (responses use another struct)."""

    workspace_id: str
    id: str
    kind: str
    owner_id: str | None
    name: str
    scopes: list[str]
    secret_hash: str
    status: str
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    version: int


class ServiceAccountRow(msgspec.Struct, frozen=True, kw_only=True):
    """One `service_accounts` row."""

    workspace_id: str
    id: str
    name: str
    description: str
    role: str
    status: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int


def apply_token(row: TokenRow | None, event: AnyApiTokenEvent) -> TokenRow | None:
    """The row after `event`; an event at or below the row's version changes nothing (replays)."""
    if row is not None and event.originator_version <= row.version:
        return row
    match event:
        case ApiTokenCreated():
            return TokenRow(workspace_id=event.workspace_id, id=render("tok", event.originator_id),
                            kind=event.kind.value, owner_id=event.owner_id, name=event.name,
                            scopes=list(event.scopes), secret_hash=event.secret_hash, status="active",
                            expires_at=event.expires_at, created_by=event.actor.id, created_at=event.occurred_at,
                            rotated_at=None, revoked_at=None, version=event.originator_version)
        case ApiTokenRotated():
            if row is None:
                return None
            return msgspec.structs.replace(row, secret_hash=event.secret_hash, rotated_at=event.occurred_at,
                                           version=event.originator_version)
        case ApiTokenRevoked():
            if row is None:
                return None
            return msgspec.structs.replace(row, status="revoked", revoked_at=event.occurred_at,
                                           version=event.originator_version)
        case _:
            assert_never(event)


def apply_service_account(row: ServiceAccountRow | None, event: AnyServiceAccountEvent) -> ServiceAccountRow | None:
    if row is not None and event.originator_version <= row.version:
        return row
    match event:
        case ServiceAccountCreated():
            return ServiceAccountRow(workspace_id=event.workspace_id, id=render("sa", event.originator_id),
                                     name=event.name, description=event.description, role=event.role.value,
                                     status="active", created_by=event.actor.id, created_at=event.occurred_at,
                                     updated_at=event.occurred_at, version=event.originator_version)
        case ServiceAccountUpdated():
            if row is None:
                return None
            return msgspec.structs.replace(
                row, name=row.name if event.name is msgspec.UNSET else event.name,
                description=row.description if event.description is msgspec.UNSET else event.description,
                role=row.role if event.role is msgspec.UNSET else event.role.value,
                updated_at=event.occurred_at, version=event.originator_version)
        case ServiceAccountDeleted():
            if row is None:
                return None
            return msgspec.structs.replace(row, status="deleted", updated_at=event.occurred_at,
                                           version=event.originator_version)
        case _:
            assert_never(event)


def fold_token(events: Iterable[AnyApiTokenEvent]) -> TokenRow | None:
    row: TokenRow | None = None
    for event in events:
        row = apply_token(row, event)
    return row


def fold_service_account(events: Iterable[AnyServiceAccountEvent]) -> ServiceAccountRow | None:
    row: ServiceAccountRow | None = None
    for event in events:
        row = apply_service_account(row, event)
    return row
