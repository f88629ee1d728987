"""Outbound webhook endpoint events: one stream per endpoint. The signing secret is stored only as ciphertext
(adapters/secret_box.py), so no event carries it in clear. Additive-only: never rename or retype a field."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

import msgspec

from domain.events import DomainEvent


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class WebhookEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "webhook"


class WebhookEndpointCreated(WebhookEvent, frozen=True, kw_only=True):
    url: str
    event_types: list[str]
    connector_id: str | None = None
    description: str = ""
    secret_ciphertext: str


class WebhookEndpointUpdated(WebhookEvent, frozen=True, kw_only=True):
    """Only the fields that changed are present; `status` moves between active and disabled by hand."""

    url: str | msgspec.UnsetType = msgspec.UNSET
    event_types: list[str] | msgspec.UnsetType = msgspec.UNSET
    connector_id: str | None | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    status: EndpointStatus | msgspec.UnsetType = msgspec.UNSET


class WebhookEndpointDeleted(WebhookEvent, frozen=True, kw_only=True):
    pass


class WebhookSecretRotated(WebhookEvent, frozen=True, kw_only=True):
    """A new secret signs from now on; the previous one keeps signing beside it until `previous_valid_until`."""

    secret_ciphertext: str
    previous_valid_until: datetime


class WebhookPingRequested(WebhookEvent, frozen=True, kw_only=True):
    """`POST /v1/webhooks/{id}/test`: the delivery worker sends a `webhook.ping` delivery with id `delivery_id`."""

    delivery_id: str


class WebhookRedeliveryRequested(WebhookEvent, frozen=True, kw_only=True):
    """A delivery to send again (same event id: receivers dedupe on it), now, whatever its state."""

    delivery_id: str


class WebhookEndpointDisabled(WebhookEvent, frozen=True, kw_only=True):
    """The delivery worker disabled the endpoint: every delivery to it failed since `failing_since`."""

    reason: str
    failing_since: datetime


AnyWebhookEvent = (WebhookEndpointCreated | WebhookEndpointUpdated | WebhookEndpointDeleted | WebhookSecretRotated
                   | WebhookPingRequested | WebhookRedeliveryRequested | WebhookEndpointDisabled)
WEBHOOK_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    WebhookEndpointCreated, WebhookEndpointUpdated, WebhookEndpointDeleted, WebhookSecretRotated,
    WebhookPingRequested, WebhookRedeliveryRequested, WebhookEndpointDisabled,
)
