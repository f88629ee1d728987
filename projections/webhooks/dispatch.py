"""Delivery decisions: the delivery worker's consumer folds the event stream into its own tables.

In stream order, and in one transaction with the worker's checkpoint (workers/projector_runner.py runs it like a
read model, under its own durable consumer): webhook events keep `webhook_routes` (the endpoints, with their sealed
secrets); every event that maps to public types (domain/webhooks/outbound.py) becomes one `webhook_deliveries` row
per subscribed endpoint. The row is unique per (endpoint, webhook event): an event seen again after a crash between
commit and ack decides nothing new. Not a registered read model: a rebuild must never send again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters.codec import STREAM_PREFIX, AnyEvent, to_public
from adapters.ids import event_id, keyed_uuid
from domain.events import DomainEvent
from domain.ids import render
from domain.issues.events import IssueEvent
from domain.webhooks.endpoint import PING_TYPE, WebhookEndpoint, evolve
from domain.webhooks.events import (
    EndpointStatus,
    WebhookEndpointDeleted,
    WebhookEvent,
    WebhookPingRequested,
    WebhookRedeliveryRequested,
)
from domain.webhooks.outbound import RULES, WITHHELD, connector_of, delivered_as

NAME = "webhook_dispatch"
VERSION = 1
CATEGORIES = frozenset({"webhook"} | {cls.category for cls in RULES} | {IssueEvent.category})
TABLES = ("webhook_routes", "webhook_deliveries", "webhook_attempts")

Conn = AsyncConnection[dict[str, Any]]
_ROUTE_COLUMNS = ("workspace_id", "id", "url", "event_types", "connector_id", "status", "deleted",
                  "secret_ciphertext", "previous_secret_ciphertext", "previous_valid_until", "version")
_UPSERT_ROUTE = (f"INSERT INTO webhook_routes ({', '.join(_ROUTE_COLUMNS)}) VALUES "
                 f"({', '.join(f'%({c})s' for c in _ROUTE_COLUMNS)}) ON CONFLICT (workspace_id, id) DO UPDATE SET "
                 f"{', '.join(f'{c} = excluded.{c}' for c in _ROUTE_COLUMNS[2:])}"
                 " WHERE webhook_routes.version < excluded.version")
_INSERT_DELIVERY = """
INSERT INTO webhook_deliveries (workspace_id, id, endpoint_id, event_id, event_type, kind, payload, position,
                                created_at, status, next_attempt_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', %s)
ON CONFLICT DO NOTHING
"""
_REDELIVER = """
UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = %s, first_attempt_at = NULL,
    redeliveries = redeliveries + 1
WHERE id = %s AND endpoint_id = %s AND workspace_id = %s
"""
_CANCEL = """
UPDATE webhook_deliveries SET status = 'failed', last_error = 'the webhook was deleted'
WHERE endpoint_id = %s AND workspace_id = %s AND status = 'pending'
"""
_json = msgspec.json.Encoder()


class Payload(msgspec.Struct, kw_only=True):
    """The documented delivery body (api.md "Webhooks"): signed byte for byte as stored."""

    id: str
    type: str
    created_at: datetime
    workspace_id: str
    data: dict[str, Any]


def webhook_event_id(event: DomainEvent, public_type: str) -> str:
    """Stable per (domain event, public type): one event delivered as two types is two webhook events."""
    return render("evt", keyed_uuid(str(event_id(event.originator_id, event.originator_version)), public_type))


def delivery_id(endpoint_id: str, webhook_event: str) -> str:
    return render("dlv", keyed_uuid("webhook-delivery", endpoint_id, webhook_event))


def ping_event_id(delivery: str) -> str:
    return render("evt", keyed_uuid("webhook-ping", delivery))


def body_of(event: DomainEvent, public_type: str, position: int) -> bytes:
    public = to_public(event, position)
    subject = f"{type(event).category}_id"
    withheld = WITHHELD.get(type(event), frozenset())
    data = {subject: render(STREAM_PREFIX[type(event).category], event.originator_id), "event": public.type,
            **{name: value for name, value in public.data.items() if name not in withheld}}
    return _json.encode(Payload(id=webhook_event_id(event, public_type), type=public_type,
                                created_at=event.occurred_at, workspace_id=event.workspace_id, data=data))


def ping_body(event: WebhookPingRequested) -> bytes:
    endpoint = render("whk", event.originator_id)
    return _json.encode(Payload(id=ping_event_id(event.delivery_id), type=PING_TYPE, created_at=event.occurred_at,
                                workspace_id=event.workspace_id,
                                data={"webhook_id": endpoint, "message": "Test delivery from Causeloop"}))


def _route_from_row(row: dict[str, Any]) -> WebhookEndpoint:
    from domain.ids import parse

    stream = parse("whk", str(row["id"]))
    assert stream is not None
    return WebhookEndpoint(id=stream, workspace_id=row["workspace_id"], version=row["version"], url=row["url"],
                           event_types=tuple(row["event_types"]), connector_id=row["connector_id"],
                           description="", status=EndpointStatus(row["status"]),
                           secret_ciphertext=row["secret_ciphertext"],
                           previous_secret_ciphertext=row["previous_secret_ciphertext"],
                           previous_valid_until=row["previous_valid_until"], deleted=row["deleted"])


def _row_of(route: WebhookEndpoint) -> dict[str, Any]:
    return {"workspace_id": route.workspace_id, "id": render("whk", route.id), "url": route.url,
            "event_types": list(route.event_types), "connector_id": route.connector_id,
            "status": route.status.value, "deleted": route.deleted, "secret_ciphertext": route.secret_ciphertext,
            "previous_secret_ciphertext": route.previous_secret_ciphertext,
            "previous_valid_until": route.previous_valid_until, "version": route.version}


async def _routes(conn: Conn, workspaces: set[str]) -> dict[str, dict[str, WebhookEndpoint]]:
    """Every endpoint (live or not) of these workspaces, by workspace and id."""
    found: dict[str, dict[str, WebhookEndpoint]] = {workspace: {} for workspace in workspaces}
    if not workspaces:
        return found
    cur = await conn.execute(f"SELECT {', '.join(_ROUTE_COLUMNS)} FROM webhook_routes WHERE workspace_id = ANY(%s)",
                             (sorted(workspaces),))
    for row in await cur.fetchall():
        found[str(row["workspace_id"])][str(row["id"])] = _route_from_row(row)
    return found


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Fold endpoints and decide deliveries, event by event in stream order (an endpoint created before an event
    gets it; one deleted before does not)."""
    relevant = [(position, event) for position, event in batch
                if isinstance(event, WebhookEvent) or type(event) in RULES]
    if not relevant:
        return
    routes = await _routes(conn, {str(event.workspace_id) for _, event in relevant})
    changed: dict[str, WebhookEndpoint] = {}
    deliveries: list[tuple[object, ...]] = []
    redeliveries: list[tuple[object, ...]] = []
    cancelled: list[tuple[object, ...]] = []
    for position, event in relevant:
        workspace = routes[str(event.workspace_id)]
        if isinstance(event, WebhookEvent):
            key = render("whk", event.originator_id)
            current = workspace.get(key)
            if current is not None and event.originator_version <= current.version:
                continue
            if current is None and event.originator_version != 1:
                continue  # never saw its creation (cannot happen in order; a parked event at most)
            route = evolve(current, event)
            workspace[key] = changed[key] = route
            if isinstance(event, WebhookPingRequested):
                deliveries.append((event.workspace_id, event.delivery_id, key, ping_event_id(event.delivery_id),
                                   PING_TYPE, "ping", ping_body(event), position, event.occurred_at,
                                   event.occurred_at))
            elif isinstance(event, WebhookRedeliveryRequested):
                redeliveries.append((event.occurred_at, event.delivery_id, key, event.workspace_id))
            elif isinstance(event, WebhookEndpointDeleted):
                cancelled.append((key, event.workspace_id))
            continue
        pairs = [(told, public_type, connector_of(told)) for told, public_type in delivered_as(event)]
        for endpoint_id, route in workspace.items():
            if route.deleted or route.status is not EndpointStatus.ACTIVE:
                continue
            for told, public_type, connector in pairs:
                if route.connector_id is not None and route.connector_id != connector:
                    continue
                if public_type in route.event_types:
                    webhook_event = webhook_event_id(told, public_type)
                    deliveries.append((event.workspace_id, delivery_id(endpoint_id, webhook_event), endpoint_id,
                                       webhook_event, public_type, "event", body_of(told, public_type, position),
                                       position, event.occurred_at, event.occurred_at))
    async with conn.pipeline():
        for route in changed.values():
            await conn.execute(_UPSERT_ROUTE, _row_of(route))
    async with conn.cursor() as cur:
        if deliveries:
            await cur.executemany(_INSERT_DELIVERY, deliveries)
        if redeliveries:
            await cur.executemany(_REDELIVER, redeliveries)
        if cancelled:
            await cur.executemany(_CANCEL, cancelled)
    if deliveries or redeliveries:
        await conn.execute("SELECT pg_notify(current_schema() || '_webhooks', '')")
