"""Outbound webhooks (`/v1/webhooks`): endpoints that receive signed event deliveries, their deliveries and attempts.

Writes are commands (commands/webhooks.py); the delivery worker (workers/webhook_delivery.py) decides and sends the
deliveries. Every route needs `webhooks:admin`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from adapters.secret_box import MasterKeyMissing
from adapters.settings import Settings
from adapters.webhook_targets import Resolver, TargetRefused, parse_target, resolve_checked, system_resolver
from api.core.auth import CurrentPrincipal, requires
from api.core.conditional import STALE, etag_for, expected_version
from api.core.consistency import settle as settle_on
from api.core.deps import provide_caller, provide_read_pool
from api.core.errors import ApiError, error_responses, not_found
from api.core.idempotency import SECRET_RESPONSE
from api.core.input_policy import refused
from api.core.pagination import Cursor, Limit, Page, cursor_key, decode_cursor, page_of
from api.webhooks.schemas import (
    CreateWebhookRequest,
    DeliveryQueued,
    DeliveryStatus,
    DeliveryView,
    UpdateWebhookRequest,
    WebhookView,
    WebhookWithSecret,
)
from commands.caller import Caller
from commands.runner import Result
from commands.webhooks import WebhookCommands
from domain.ids import canonical
from domain.webhooks.endpoint import EndpointEdit
from domain.webhooks.events import AnyWebhookEvent, EndpointStatus
from projections.webhooks import queries
from projections.webhooks.projector import NAME as WEBHOOKS_PROJECTION
from projections.webhooks.queries import DeliveryAttempt, DeliveryRow
from projections.webhooks.view import EndpointRow, fold_endpoint

SCOPE = "webhooks:admin"
Commands = NamedDependency[WebhookCommands]
ReadPool = NamedDependency[AsyncConnectionPool[AsyncConn]]
Who = NamedDependency[Caller]
UNAVAILABLE = error_responses(e503="service_unavailable: CAUSELOOP_MASTER_KEY is not configured in production")
NOT_FOUND = error_responses(e404="not_found: no such webhook in this workspace")


def provide_webhook_commands(state: State) -> WebhookCommands:
    commands: WebhookCommands = state.webhook_commands
    return commands


def _ref(prefix: str, kind: str, public_id: str) -> str:
    value = canonical(prefix, public_id)
    if value is None:
        raise not_found(kind, public_id)
    return value


def _view(row: EndpointRow) -> WebhookView:
    return msgspec.convert({name: getattr(row, name) for name in WebhookView.__struct_fields__}, WebhookView)


def _of(accepted: Result) -> WebhookView:
    row = fold_endpoint(cast(list[AnyWebhookEvent], list(accepted.stream)))
    assert row is not None
    return _view(row)


def _with_secret(view: WebhookView, secret: str | None) -> WebhookWithSecret:
    return WebhookWithSecret(**msgspec.structs.asdict(view), secret=secret or "")


def _delivery(row: DeliveryRow, attempts: list[DeliveryAttempt]) -> DeliveryView:
    return DeliveryView(id=row.id, webhook_id=row.endpoint_id, event_id=row.event_id, event_type=row.event_type,
                        kind=row.kind, status=row.status, attempt_count=row.attempts,  # type: ignore[arg-type]
                        created_at=row.created_at,
                        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
                        last_attempt_at=row.last_attempt_at, last_status_code=row.last_status_code,
                        last_error=row.last_error, delivered_at=row.delivered_at, redeliveries=row.redeliveries,
                        attempts=attempts)


async def checked_url(state: State, url: str) -> str:
    """The URL when the policy allows it, its host resolved now (the worker checks again at every connect).
    `state.webhook_resolver` replaces the system's DNS (tests)."""
    settings: Settings = state.settings
    resolver: Resolver = getattr(state, "webhook_resolver", system_resolver)
    try:
        await resolve_checked(parse_target(url, settings), settings, resolver)
    except TargetRefused as exc:
        raise refused("url", str(exc)) from None
    return url


def _connector(value: str | None) -> str | None:
    """A connector id in its canonical (upper-case) spelling, so the filter matches the events' ids."""
    if value is None:
        return None
    found = canonical("con", value)
    if found is None:
        raise refused("connector_id", "must be a connector id (con_ followed by 26 Crockford base32 characters)")
    return found


async def _settle(state: State, accepted: Result) -> dict[str, str]:
    return {"ETag": etag_for(accepted.version), **await settle_on(state, (WEBHOOKS_PROJECTION, accepted.position))}


def _unavailable() -> ApiError:
    return ApiError(503, "service_unavailable", "Webhook secrets need CAUSELOOP_MASTER_KEY, which is not configured")


class WebhooksController(Controller):
    path = "/v1/webhooks"
    tags = ("Webhooks",)
    guards = [requires(SCOPE)]  # noqa: RUF012  (Litestar reads this class attribute)
    dependencies = {  # noqa: RUF012
        "commands": Provide(provide_webhook_commands, sync_to_thread=False),
        "read_pool": Provide(provide_read_pool, sync_to_thread=False),
        "caller": Provide(provide_caller, sync_to_thread=False),
    }

    @post("/", status_code=201, opt=SECRET_RESPONSE, responses=UNAVAILABLE)
    async def create_webhook(self, state: State, data: JSONBody[CreateWebhookRequest], commands: Commands,
                             caller: Who) -> Response[WebhookWithSecret]:
        """Register an endpoint for the chosen event types (optionally only events of one connector). The signing
        secret (`whsec_…`) is in this answer once; every delivery is signed with it (`x-causeloop-signature`)."""
        url = await checked_url(state, data.url)
        try:
            accepted = await commands.create(caller, url=url, event_types=[t.value for t in data.event_types],
                                             connector_id=_connector(data.connector_id),
                                             description=data.description)
        except MasterKeyMissing:
            raise _unavailable() from None
        headers = {**await _settle(state, accepted), "Cache-Control": "no-store",
                   "Location": f"/v1/webhooks/{_of(accepted).id}"}
        return Response(_with_secret(_of(accepted), accepted.revealed), status_code=201, headers=headers)

    @get("/")
    async def list_webhooks(self, request: Request[Any, Any, Any], principal: CurrentPrincipal, read_pool: ReadPool,
                            limit: Limit = 25, cursor: Cursor = None) -> Page[WebhookView]:
        """The workspace's endpoints, oldest first (never their secrets)."""
        key = cursor_key(request)
        after = None
        if cursor:
            payload = decode_cursor(key, cursor, "created_at")
            after = (datetime.fromisoformat(str(payload["v"])), str(payload["i"]))
        async with tenant_transaction(read_pool, principal.workspace_id) as conn:
            rows, total = await queries.list_endpoints(conn, principal.workspace_id, after=after, limit=limit + 1)
        return page_of([_view(row) for row in rows], limit=limit, total=total, key=key, sort="created_at",
                       position=lambda row: {"v": row.created_at.isoformat(), "i": row.id})

    @get("/{webhook_id:str}", responses=NOT_FOUND)
    async def get_webhook(self, webhook_id: FromPath[str], principal: CurrentPrincipal,
                          read_pool: ReadPool) -> Response[WebhookView]:
        """One endpoint; its `ETag` is its version (for `If-Match` on PATCH)."""
        public_id = _ref("whk", "webhook", webhook_id)
        async with tenant_transaction(read_pool, principal.workspace_id) as conn:
            row = await queries.get_endpoint(conn, principal.workspace_id, public_id)
        if row is None:
            raise not_found("webhook", webhook_id)
        return Response(_view(row), headers={"ETag": etag_for(row.version)})

    @patch("/{webhook_id:str}", responses={**NOT_FOUND, **error_responses(e412=STALE)})
    async def update_webhook(self, state: State, request: Request[Any, Any, Any], webhook_id: FromPath[str],
                             data: JSONBody[UpdateWebhookRequest], commands: Commands,
                             caller: Who) -> Response[WebhookView]:
        """Change the URL (checked again), event types, connector filter, description, or `status` (`active`
        enables an endpoint again, also one disabled after 24 h of failures)."""
        public_id = _ref("whk", "webhook", webhook_id)
        url = data.url if data.url is msgspec.UNSET else await checked_url(state, data.url)
        edit = EndpointEdit(url=url,
                            event_types=msgspec.UNSET if data.event_types is msgspec.UNSET
                            else [t.value for t in data.event_types],
                            connector_id=data.connector_id if data.connector_id is msgspec.UNSET
                            else _connector(data.connector_id), description=data.description,
                            status=msgspec.UNSET if data.status is msgspec.UNSET else EndpointStatus(data.status))
        accepted = await commands.update(caller, public_id, edit, expected_version(request))
        return Response(_of(accepted), headers=await _settle(state, accepted))

    @delete("/{webhook_id:str}", status_code=204, responses=NOT_FOUND)
    async def delete_webhook(self, state: State, webhook_id: FromPath[str], commands: Commands,
                             caller: Who) -> Response[None]:
        """Delete an endpoint: nothing more is delivered to it, pending retries included."""
        accepted = await commands.delete(caller, _ref("whk", "webhook", webhook_id))
        return Response(None, status_code=204, headers=await _settle(state, accepted))

    @post("/{webhook_id:str}/rotate", status_code=200, opt=SECRET_RESPONSE, responses={**NOT_FOUND, **UNAVAILABLE})
    async def rotate_webhook_secret(self, state: State, webhook_id: FromPath[str], commands: Commands,
                                    caller: Who) -> Response[WebhookWithSecret]:
        """A new signing secret, shown once. The previous one keeps signing beside it until
        `previous_secret_valid_until` (24 h by default): during that overlap `x-causeloop-signature` carries both
        signatures, comma-separated, the new one first."""
        try:
            accepted = await commands.rotate(caller, _ref("whk", "webhook", webhook_id))
        except MasterKeyMissing:
            raise _unavailable() from None
        headers = {**await _settle(state, accepted), "Cache-Control": "no-store"}
        return Response(_with_secret(_of(accepted), accepted.revealed), headers=headers)

    @post("/{webhook_id:str}/test", status_code=202, responses=NOT_FOUND)
    async def test_webhook(self, state: State, webhook_id: FromPath[str], commands: Commands,
                           caller: Who) -> Response[DeliveryQueued]:
        """Send a `webhook.ping` delivery now (also to a disabled endpoint); follow it under `…/deliveries`."""
        public_id = _ref("whk", "webhook", webhook_id)
        accepted, delivery = await commands.ping(caller, public_id)
        return Response(DeliveryQueued(delivery_id=delivery, webhook_id=public_id), status_code=202,
                        headers=await _settle(state, accepted))

    @get("/{webhook_id:str}/deliveries", responses=NOT_FOUND)
    async def list_webhook_deliveries(self, request: Request[Any, Any, Any], webhook_id: FromPath[str],
                                      principal: CurrentPrincipal, read_pool: ReadPool, limit: Limit = 25,
                                      cursor: Cursor = None,
                                      status: FromQuery[DeliveryStatus | None] = None) -> Page[DeliveryView]:
        """The endpoint's deliveries, newest first, each with every attempt (status code, latency, error, the
        response body's first 1,024 characters)."""
        public_id = _ref("whk", "webhook", webhook_id)
        key = cursor_key(request)
        before = None
        if cursor:
            payload = decode_cursor(key, cursor, "-created_at")
            before = (datetime.fromisoformat(str(payload["v"])), str(payload["i"]))
        async with tenant_transaction(read_pool, principal.workspace_id) as conn:
            if await queries.get_endpoint(conn, principal.workspace_id, public_id) is None:
                raise not_found("webhook", webhook_id)
            rows, total = await queries.list_deliveries(
                conn, principal.workspace_id, public_id, status=None if status is None else status.value,
                before=before, limit=limit + 1)
            attempts = await queries.attempts_of(conn, principal.workspace_id, [row.id for row in rows[:limit]])
        views = [_delivery(row, attempts.get(row.id, [])) for row in rows]
        return page_of(views, limit=limit, total=total, key=key, sort="-created_at",
                       position=lambda row: {"v": row.created_at.isoformat(), "i": row.id})

    @post("/{webhook_id:str}/deliveries/{delivery_id:str}/redeliver", status_code=202, responses=error_responses(
        e404="not_found: no such webhook, or no such delivery of it"))
    async def redeliver_webhook_delivery(self, state: State, webhook_id: FromPath[str], delivery_id: FromPath[str],
                                         principal: CurrentPrincipal, read_pool: ReadPool, commands: Commands,
                                         caller: Who) -> Response[DeliveryQueued]:
        """Send a delivery again now, with the same event id (receivers dedupe on `x-causeloop-event-id`); a failed
        one gets a fresh 24 h of retries."""
        public_id = _ref("whk", "webhook", webhook_id)
        delivery = _ref("dlv", "delivery", delivery_id)
        async with tenant_transaction(read_pool, principal.workspace_id) as conn:
            row = await queries.get_delivery(conn, principal.workspace_id, delivery)
        if row is None or row.endpoint_id != public_id:
            raise not_found("delivery", delivery_id)
        accepted = await commands.redeliver(caller, public_id, delivery)
        return Response(DeliveryQueued(delivery_id=delivery, webhook_id=public_id), status_code=202,
                        headers=await _settle(state, accepted))
