"""An outbound webhook endpoint: its state, the fold over its events, and the decisions on it.

Checking a URL needs DNS, and sealing a secret needs the master key: the command does both and hands the
results in; the decisions here say what may happen in which state.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TypeVar, assert_never
from uuid import UUID

import msgspec

from domain.errors import InvalidValue
from domain.events import Meta, envelope
from domain.ids import WorkspaceId
from domain.webhooks.events import (
    AnyWebhookEvent,
    EndpointStatus,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
    WebhookEndpointUpdated,
    WebhookEvent,
    WebhookPingRequested,
    WebhookRedeliveryRequested,
    WebhookSecretRotated,
)

EVENT_TYPES = (
    "issue.ingested", "issue.created", "issue.updated", "issue.resolved", "pattern.detected", "pattern.updated",
    "prediction.generated", "prediction.alert.fired", "recommendation.created", "recommendation.verified",
    "sync.succeeded", "sync.failed",
)
"""The public event types an endpoint may subscribe to (api.md "Webhooks"), exactly."""
PING_TYPE = "webhook.ping"
T = TypeVar("T")
"""The type of a test delivery (`POST …/test`): sent whatever the endpoint subscribes to."""


class WebhookEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    workspace_id: WorkspaceId
    version: int
    url: str
    event_types: tuple[str, ...]
    connector_id: str | None
    description: str
    status: EndpointStatus
    secret_ciphertext: str
    previous_secret_ciphertext: str | None = None
    previous_valid_until: datetime | None = None
    deleted: bool = False


class EndpointEdit(msgspec.Struct, frozen=True, kw_only=True):
    """A requested change; UNSET fields are left as they are. `url` arrives already checked."""

    url: str | msgspec.UnsetType = msgspec.UNSET
    event_types: list[str] | msgspec.UnsetType = msgspec.UNSET
    connector_id: str | None | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    status: EndpointStatus | msgspec.UnsetType = msgspec.UNSET


def evolve(endpoint: WebhookEndpoint | None, event: AnyWebhookEvent) -> WebhookEndpoint:
    if isinstance(event, WebhookEndpointCreated):
        return WebhookEndpoint(id=event.originator_id, workspace_id=event.workspace_id,
                               version=event.originator_version, url=event.url, event_types=tuple(event.event_types),
                               connector_id=event.connector_id, description=event.description,
                               status=EndpointStatus.ACTIVE, secret_ciphertext=event.secret_ciphertext)
    assert endpoint is not None, "an endpoint stream starts with WebhookEndpointCreated"
    endpoint = msgspec.structs.replace(endpoint, version=event.originator_version)
    match event:
        case WebhookEndpointUpdated():
            changes = {name: getattr(event, name) for name in ("url", "connector_id", "description", "status")
                       if getattr(event, name) is not msgspec.UNSET}
            if event.event_types is not msgspec.UNSET:
                changes["event_types"] = tuple(event.event_types)
            return msgspec.structs.replace(endpoint, **changes)
        case WebhookEndpointDeleted():
            return msgspec.structs.replace(endpoint, deleted=True, status=EndpointStatus.DISABLED)
        case WebhookSecretRotated():
            return msgspec.structs.replace(endpoint, secret_ciphertext=event.secret_ciphertext,
                                           previous_secret_ciphertext=endpoint.secret_ciphertext,
                                           previous_valid_until=event.previous_valid_until)
        case WebhookEndpointDisabled():
            return msgspec.structs.replace(endpoint, status=EndpointStatus.DISABLED)
        case WebhookPingRequested() | WebhookRedeliveryRequested():
            return endpoint
        case _:
            assert_never(event)


def project_endpoint(endpoint: WebhookEndpoint | None, events: Iterable[AnyWebhookEvent]) -> WebhookEndpoint | None:
    return functools.reduce(evolve, events, endpoint)


def clean_event_types(event_types: Iterable[str]) -> list[str]:
    """At least one, each a documented type; duplicates collapse, the order is the catalogue's."""
    wanted = set(event_types)
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise InvalidValue("event_types", f"unknown event type {unknown[0]!r}; one of: {', '.join(EVENT_TYPES)}")
    if not wanted:
        raise InvalidValue("event_types", "subscribe to at least one event type")
    return [name for name in EVENT_TYPES if name in wanted]


def create_endpoint(*, stream_id: UUID, meta: Meta, url: str, event_types: Iterable[str], connector_id: str | None,
                    description: str, secret_ciphertext: str) -> WebhookEndpointCreated:
    return WebhookEndpointCreated(**envelope(meta, stream_id, 1), url=url, event_types=clean_event_types(event_types),
                                  connector_id=connector_id, description=description,
                                  secret_ciphertext=secret_ciphertext)


def update_endpoint(endpoint: WebhookEndpoint, edit: EndpointEdit, meta: Meta) -> list[WebhookEvent]:
    """Only what changes is recorded; nothing changing records nothing."""
    types = msgspec.UNSET if edit.event_types is msgspec.UNSET else clean_event_types(edit.event_types)
    event = WebhookEndpointUpdated(
        **envelope(meta, endpoint.id, endpoint.version + 1),
        url=_changed(edit.url, endpoint.url),
        event_types=msgspec.UNSET if types is msgspec.UNSET or tuple(types) == endpoint.event_types else types,
        connector_id=_changed(edit.connector_id, endpoint.connector_id),
        description=_changed(edit.description, endpoint.description),
        status=_changed(edit.status, endpoint.status),
    )
    changed = any(getattr(event, name) is not msgspec.UNSET
                  for name in ("url", "event_types", "connector_id", "description", "status"))
    return [event] if changed else []


def _changed(value: T | msgspec.UnsetType, current: T) -> T | msgspec.UnsetType:
    return msgspec.UNSET if value is msgspec.UNSET or value == current else value


def delete_endpoint(endpoint: WebhookEndpoint, meta: Meta) -> WebhookEndpointDeleted:
    return WebhookEndpointDeleted(**envelope(meta, endpoint.id, endpoint.version + 1))


def rotate_secret(endpoint: WebhookEndpoint, *, secret_ciphertext: str, overlap: timedelta,
                  meta: Meta) -> WebhookSecretRotated:
    """The previous secret keeps signing beside the new one for `overlap`, so receivers can switch without a gap."""
    return WebhookSecretRotated(**envelope(meta, endpoint.id, endpoint.version + 1),
                                secret_ciphertext=secret_ciphertext, previous_valid_until=meta.now + overlap)


def request_ping(endpoint: WebhookEndpoint, delivery_id: str, meta: Meta) -> WebhookPingRequested:
    """A ping goes out even to a disabled endpoint: it is how one checks a receiver before enabling it again."""
    return WebhookPingRequested(**envelope(meta, endpoint.id, endpoint.version + 1), delivery_id=delivery_id)


def request_redelivery(endpoint: WebhookEndpoint, delivery_id: str, meta: Meta) -> WebhookRedeliveryRequested:
    return WebhookRedeliveryRequested(**envelope(meta, endpoint.id, endpoint.version + 1), delivery_id=delivery_id)


def disable_for_failures(endpoint: WebhookEndpoint, *, failing_since: datetime, reason: str,
                         meta: Meta) -> list[WebhookEvent]:
    """Only an active endpoint is disabled; one already disabled (or deleted) records nothing."""
    if endpoint.deleted or endpoint.status is not EndpointStatus.ACTIVE:
        return []
    return [WebhookEndpointDisabled(**envelope(meta, endpoint.id, endpoint.version + 1), reason=reason,
                                    failing_since=failing_since)]
