"""The envelope every domain event carries: stream position, workspace, actor and correlation."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, TypedDict
from uuid import UUID

import msgspec

from domain.ids import WorkspaceId


class ActorKind(StrEnum):
    USER = "user"
    SERVICE_ACCOUNT = "service_account"
    SYSTEM = "system"


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    kind: ActorKind
    id: str


class Meta(msgspec.Struct, frozen=True, kw_only=True):
    """Who caused an event, when, and within which request: passed into decisions, never read from a clock."""

    workspace_id: WorkspaceId
    actor: Actor
    now: datetime
    correlation_id: str | None = None
    causation_id: str | None = None
    client_ip: str | None = None


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Base of every stored event. `category` names the NATS subject token; never rename a field."""

    category: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1

    originator_id: UUID
    originator_version: int
    occurred_at: datetime
    workspace_id: WorkspaceId
    actor: Actor
    correlation_id: str | None = None
    causation_id: str | None = None
    client_ip: str | None = None
    """The requester's address, for the audit log; None for system work and for events stored before it existed."""


class Envelope(TypedDict):
    originator_id: UUID
    originator_version: int
    occurred_at: datetime
    workspace_id: WorkspaceId
    actor: Actor
    correlation_id: str | None
    causation_id: str | None
    client_ip: str | None


def envelope(meta: Meta, stream_id: UUID, version: int) -> Envelope:
    """The envelope fields of an event at `version` of `stream_id`, as keyword arguments."""
    return {
        "originator_id": stream_id,
        "originator_version": version,
        "occurred_at": meta.now,
        "workspace_id": meta.workspace_id,
        "actor": meta.actor,
        "correlation_id": meta.correlation_id,
        "causation_id": meta.causation_id,
        "client_ip": meta.client_ip,
    }
