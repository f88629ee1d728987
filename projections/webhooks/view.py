"""Webhook endpoint read-model rows and the pure fold that builds them: the projector and the API share it.

No secret, not even its ciphertext, is in these rows: the delivery worker keeps its own copy (dispatch.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import assert_never

import msgspec

from domain.ids import render
from domain.webhooks.events import (
    AnyWebhookEvent,
    EndpointStatus,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
    WebhookEndpointUpdated,
    WebhookPingRequested,
    WebhookRedeliveryRequested,
    WebhookSecretRotated,
)


class EndpointRow(msgspec.Struct, frozen=True, kw_only=True):
    """One `webhook_endpoints` row."""

    workspace_id: str
    id: str
    url: str
    event_types: list[str]
    connector_id: str | None
    description: str
    status: str
    disabled_reason: str | None
    secret_rotated_at: datetime | None
    previous_secret_valid_until: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    deleted: bool
    version: int


def apply_endpoint(row: EndpointRow | None, event: AnyWebhookEvent) -> EndpointRow | None:
    """The row after `event`; an event at or below the row's version changes nothing (replays)."""
    if row is not None and event.originator_version <= row.version:
        return row
    if isinstance(event, WebhookEndpointCreated):
        return EndpointRow(workspace_id=event.workspace_id, id=render("whk", event.originator_id), url=event.url,
                           event_types=list(event.event_types), connector_id=event.connector_id,
                           description=event.description, status=EndpointStatus.ACTIVE.value, disabled_reason=None,
                           secret_rotated_at=None, previous_secret_valid_until=None, created_by=event.actor.id,
                           created_at=event.occurred_at, updated_at=event.occurred_at, deleted=False,
                           version=event.originator_version)
    if row is None:
        return None
    row = msgspec.structs.replace(row, version=event.originator_version)
    match event:
        case WebhookEndpointUpdated():
            changes: dict[str, object] = {name: getattr(event, name) for name in ("url", "connector_id",
                                                                                   "description")
                                          if getattr(event, name) is not msgspec.UNSET}
            if event.event_types is not msgspec.UNSET:
                changes["event_types"] = list(event.event_types)
            if event.status is not msgspec.UNSET:
                changes["status"] = event.status.value
                changes["disabled_reason"] = None if event.status is EndpointStatus.ACTIVE else "disabled by hand"
            return msgspec.structs.replace(row, updated_at=event.occurred_at, **changes)
        case WebhookEndpointDeleted():
            return msgspec.structs.replace(row, deleted=True, updated_at=event.occurred_at)
        case WebhookSecretRotated():
            return msgspec.structs.replace(row, secret_rotated_at=event.occurred_at, updated_at=event.occurred_at,
                                           previous_secret_valid_until=event.previous_valid_until)
        case WebhookEndpointDisabled():
            return msgspec.structs.replace(row, status=EndpointStatus.DISABLED.value, disabled_reason=event.reason,
                                           updated_at=event.occurred_at)
        case WebhookPingRequested() | WebhookRedeliveryRequested():
            return row
        case _:
            assert_never(event)


def fold_endpoint(events: Iterable[AnyWebhookEvent]) -> EndpointRow | None:
    row: EndpointRow | None = None
    for event in events:
        row = apply_endpoint(row, event)
    return row
