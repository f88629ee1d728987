"""The one event codec: stored form, upcasting of older schema versions, and the public NATS payload."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec

from adapters.ids import event_id
from domain.connectors.events import CONNECTOR_EVENT_TYPES, AnyConnectorsCategoryEvent
from domain.credentials.events import CREDENTIAL_EVENT_TYPES, AnyCredentialEvent
from domain.events import Actor, DomainEvent
from domain.identity.events import IDENTITY_EVENT_TYPES, AnyIdentityEvent
from domain.ids import parse, render
from domain.ingestion.events import INGESTION_JOB_EVENT_TYPES, AnyIngestionJobEvent
from domain.issues.events import ISSUE_EVENT_TYPES, AnyIssueEvent
from domain.mfa.events import MFA_EVENT_TYPES, AnyMfaEvent
from domain.notifications.events import WATCH_EVENT_TYPES, AnyNotificationSettingsEvent
from domain.patterns.events import PATTERN_EVENT_TYPES, AnyPatternEvent
from domain.predictions.events import PREDICTION_EVENT_TYPES, AnyPredictionsCategoryEvent
from domain.recommendations.events import RECOMMENDATION_EVENT_TYPES, AnyRecommendationEvent
from domain.sessions.events import SESSION_EVENT_TYPES, AnySessionEvent
from domain.webhooks.events import WEBHOOK_EVENT_TYPES, AnyWebhookEvent
from domain.workspace_settings.events import SETTINGS_EVENT_TYPES, AnySettingsCategoryEvent

AnyEvent = (AnyIssueEvent | AnyIdentityEvent
            | AnySettingsCategoryEvent
            | AnySessionEvent | AnyMfaEvent | AnyCredentialEvent
            | AnyWebhookEvent
            | AnyConnectorsCategoryEvent
            | AnyPatternEvent
            | AnyRecommendationEvent
            | AnyPredictionsCategoryEvent
            | AnyNotificationSettingsEvent
            | AnyIngestionJobEvent)
EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.__name__: cls for cls in (*ISSUE_EVENT_TYPES, *IDENTITY_EVENT_TYPES,
                                  *SETTINGS_EVENT_TYPES,
                                  *SESSION_EVENT_TYPES, *MFA_EVENT_TYPES, *CREDENTIAL_EVENT_TYPES,
                                  *CONNECTOR_EVENT_TYPES, *PATTERN_EVENT_TYPES,
                                  *RECOMMENDATION_EVENT_TYPES,
                                  *PREDICTION_EVENT_TYPES, *WATCH_EVENT_TYPES,
                                  *INGESTION_JOB_EVENT_TYPES)
}
EVENT_TYPES.update({cls.__name__: cls for cls in WEBHOOK_EVENT_TYPES})
STREAM_PREFIX = {"issue": "iss", "workspace": "ws", "user": "usr",
                 "settings": "wss"}  # wss_: a workspace's settings stream, or a slug claim stream
STREAM_PREFIX |= {"invitation": "inv", "organization": "org"}
STREAM_PREFIX.update(session="ses", mfa="mfa")
STREAM_PREFIX.update(api_token="tok", service_account="sa")
STREAM_PREFIX.update(webhook="whk")
STREAM_PREFIX.update(connector="con", sync_run="run", inbound_delivery="inb")  # historical only (docs/events.md)
STREAM_PREFIX.update(pattern="pat")
STREAM_PREFIX.update(recommendation="rec")
STREAM_PREFIX.update(prediction="prd", alert_rule="alr", notification="ntfs")
STREAM_PREFIX.update(ingestion_job="ing_job")
STREAM_PREFIX.update(pattern_watch="pwt")

RawEvent = dict[str, Any]
Upcaster = Callable[[RawEvent], RawEvent]
# (type name, stored schema_version) -> function lifting the raw dict to schema_version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


class UnknownEventType(ValueError):
    """A stored event whose type this code does not know: it must never be silently skipped."""


def encode(event: DomainEvent) -> bytes:
    """Stored state: the tagged Struct with `schema_version` spliced in first."""
    body = _encoder.encode(event)
    return b'{"schema_version":%d,' % type(event).schema_version + body[1:]


def decode(state: bytes) -> AnyEvent:
    """A stored event at its type's current schema version, upcasting an older one."""
    version = _leading_version(state)
    if version is not None:  # the common case, parsed once: typed decode, then check the version it was stored at
        try:
            event: AnyEvent = _decoder.decode(state)
        except msgspec.ValidationError:
            pass  # an unknown type, or an older version's shape: the general path below says which
        else:
            if type(event).schema_version == version:
                return event
    raw = msgspec.json.decode(state)
    name = raw.get("type")
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise UnknownEventType(f"unknown event type {name!r}")
    version = int(raw.get("schema_version", 1))
    if version == cls.schema_version:
        decoded: AnyEvent = _decoder.decode(state)
        return decoded
    return _as_event(upcast(name, version, cls.schema_version, raw), cls)


def _as_event(raw: RawEvent, cls: type[DomainEvent]) -> AnyEvent:
    """`raw` as an event of its (already looked up) type. Converting to the concrete class, not to the
    AnyEvent union, is what makes it cheap: msgspec re-plans a union conversion on every call (~40x slower)."""
    return cast("AnyEvent", msgspec.convert(raw, cls))


_VERSION_PREFIX = b'{"schema_version":'


def _leading_version(state: bytes) -> int | None:
    """The schema version `encode` writes first, read without parsing the rest (None: not in that form)."""
    if not state.startswith(_VERSION_PREFIX):
        return None
    end = state.find(b",", len(_VERSION_PREFIX), len(_VERSION_PREFIX) + 12)
    digits = state[len(_VERSION_PREFIX):end] if end > 0 else b""
    return int(digits) if digits.isdigit() else None


def upcast(name: str, version: int, target: int, raw: RawEvent) -> RawEvent:
    while version < target:
        raw = UPCASTERS[(name, version)](raw)
        version += 1
    raw["schema_version"] = target
    return raw


class PublicEvent(msgspec.Struct, kw_only=True):
    """The payload internal services receive on NATS (public contract: additive-only within v1)."""

    id: UUID
    type: str
    schema_version: int
    workspace_id: str
    stream_id: str
    stream_version: int
    position: int
    occurred_at: datetime
    actor: Actor
    correlation_id: str | None
    causation_id: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    client_ip: str | None = None


_ENVELOPE_FIELDS = set(DomainEvent.__struct_fields__)


def to_public(event: DomainEvent, position: int) -> PublicEvent:
    data = {name: value for name, value in msgspec.structs.asdict(event).items()
            if name not in _ENVELOPE_FIELDS and value is not msgspec.UNSET}
    return PublicEvent(
        id=event_id(event.originator_id, event.originator_version),
        type=type(event).__name__,
        schema_version=type(event).schema_version,
        workspace_id=event.workspace_id,
        stream_id=render(STREAM_PREFIX[type(event).category], event.originator_id),
        stream_version=event.originator_version,
        position=position,
        occurred_at=event.occurred_at,
        actor=event.actor,
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        data=msgspec.to_builtins(data),
        client_ip=event.client_ip,
    )


def encode_public(event: DomainEvent, position: int) -> bytes:
    return _encoder.encode(to_public(event, position))


def subject_for(prefix: str, event: DomainEvent) -> str:
    """`<prefix>.<workspace_id>.<category>.<EventType>`, e.g. causeloop.ws_01J….issue.IssueOpened."""
    return f"{prefix}.{event.workspace_id}.{type(event).category}.{type(event).__name__}"


_public_decoder = msgspec.json.Decoder(PublicEvent)


class MalformedEvent(ValueError):
    """A bus message that is not a Causeloop event payload."""


def from_public(payload: bytes) -> tuple[int, AnyEvent]:
    """(position, domain event) back from the bus payload, upcasting older schema versions."""
    try:
        public = _public_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise MalformedEvent(str(exc)) from exc
    cls = EVENT_TYPES.get(public.type)
    if cls is None:
        raise UnknownEventType(f"unknown event type {public.type!r}")
    stream_id = parse(STREAM_PREFIX[cls.category], public.stream_id)
    if stream_id is None:
        raise MalformedEvent(f"bad stream id {public.stream_id!r}")
    raw: RawEvent = {**public.data, "type": public.type, "schema_version": public.schema_version}
    raw = upcast(public.type, public.schema_version, cls.schema_version, raw)
    raw.update(originator_id=str(stream_id), originator_version=public.stream_version,
               occurred_at=public.occurred_at.isoformat(), workspace_id=public.workspace_id,
               actor=msgspec.to_builtins(public.actor), correlation_id=public.correlation_id,
               causation_id=public.causation_id, client_ip=public.client_ip)
    try:
        event = _as_event(raw, cls)
    except msgspec.ValidationError as exc:
        raise MalformedEvent(str(exc)) from exc
    return public.position, event
