"""Request and response bodies of outbound webhooks (api.md "Webhooks")."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

import msgspec

from api.core.input_policy import RequestBody
from projections.webhooks.queries import DeliveryAttempt


class WebhookEventType(StrEnum):
    """The documented event types (domain/webhooks/endpoint.py EVENT_TYPES)."""

    ISSUE_INGESTED = "issue.ingested"
    ISSUE_CREATED = "issue.created"
    ISSUE_UPDATED = "issue.updated"
    ISSUE_RESOLVED = "issue.resolved"
    PATTERN_DETECTED = "pattern.detected"
    PATTERN_UPDATED = "pattern.updated"
    PREDICTION_GENERATED = "prediction.generated"
    PREDICTION_ALERT_FIRED = "prediction.alert.fired"
    RECOMMENDATION_CREATED = "recommendation.created"
    RECOMMENDATION_VERIFIED = "recommendation.verified"
    SYNC_SUCCEEDED = "sync.succeeded"
    SYNC_FAILED = "sync.failed"


Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048, pattern="^https?://", description=(
    "https URL of the receiver (http only to a loopback receiver in development); no credentials; private, "
    "loopback and link-local addresses are refused, when saved and again at every delivery after DNS"))]
ConnectorRef = Annotated[str, msgspec.Meta(pattern="^con_[0-9A-Za-z]{26}$", description="a connector id (con_…)")]
Description = Annotated[str, msgspec.Meta(max_length=1000)]
EventTypes = Annotated[list[WebhookEventType], msgspec.Meta(min_length=1, max_length=12)]


class CreateWebhookRequest(RequestBody, kw_only=True):
    url: Url
    event_types: EventTypes
    connector_id: ConnectorRef | None = None
    """Deliver only events that came through this connector."""
    description: Description = ""


class UpdateWebhookRequest(RequestBody, kw_only=True):
    url: Url | msgspec.UnsetType = msgspec.UNSET
    event_types: EventTypes | msgspec.UnsetType = msgspec.UNSET
    connector_id: ConnectorRef | None | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    status: Literal["active", "disabled"] | msgspec.UnsetType = msgspec.UNSET
    """`active` enables an endpoint again (also one disabled after 24 h of failures)."""


class WebhookView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    url: str
    event_types: list[str]
    connector_id: str | None
    description: str
    status: str
    """`active` or `disabled` (by hand, or automatically after 24 h of failed deliveries: see `disabled_reason`)."""
    disabled_reason: str | None
    secret_rotated_at: datetime | None
    previous_secret_valid_until: datetime | None
    """Until then the previous secret also signs every delivery (the rotation overlap)."""
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int


class WebhookWithSecret(WebhookView, frozen=True, kw_only=True):
    """As created or rotated: `secret` (`whsec_…`) is shown here once and can never be read again."""

    secret: str


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DeliveryQueued(msgspec.Struct, frozen=True, kw_only=True):
    delivery_id: str
    webhook_id: str
    status: Literal["queued"] = "queued"


class DeliveryView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    webhook_id: str
    event_id: str
    """The `id` of the delivered body and the `x-causeloop-event-id` header: receivers dedupe on it."""
    event_type: str
    kind: Literal["event", "ping"]
    status: DeliveryStatus
    attempt_count: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    redeliveries: int
    attempts: list[DeliveryAttempt]
