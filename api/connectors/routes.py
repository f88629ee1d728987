"""Connectors, their connection tests and sync runs: commands go to the event store, reads to the `connectors`
projection. The catalogue is static reference data."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from adapters.postgres import tenant_transaction
from adapters.providers.clients import ConfigError, client_for
from adapters.providers.http import Http, Policy, ProviderError
from adapters.secret_box import MasterKeyMissing, UndecryptableSecret
from adapters.settings import Settings
from api.connectors import schemas
from api.connectors.oauth import OAuthStart, start
from api.core.auth import requires
from api.core.conditional import STALE, etag_for, expected_version
from api.core.consistency import settle as settle_on
from api.core.deps import provide_caller
from api.core.errors import ApiError, error_responses, not_found, validation_error
from api.core.idempotency import SECRET_RESPONSE
from api.core.pagination import Cursor, Limit, Page, cursor_key, decode_cursor, page_of
from commands.caller import Caller
from commands.connectors import ConnectorCommands, connector_id_of
from commands.runner import Result
from domain.connectors.catalog import CATALOG, ENTRIES, CatalogEntry
from domain.connectors.connector import Connector, check_syncable
from domain.connectors.events import ConnectorEvent, RunKind, SyncRunEvent
from domain.ids import canonical, render
from projections.connectors import queries
from projections.connectors.projector import NAME as CONNECTORS_PROJECTION
from projections.connectors.view import ConnectorRow, ConnectorView, SyncRunView, apply_connector, apply_run

READ, ADMIN = "connectors:read", "connectors:admin"
CHANGED = {**error_responses(e409="conflict: the connector changed concurrently; re-read and retry"),
           **error_responses(e412=STALE)}
SYNC_REFUSED = error_responses(
    e422="invalid_transition: the connector is paused or has no credentials; sync_not_supported: a push-only type")
UNAVAILABLE = error_responses(e503="service_unavailable: CAUSELOOP_MASTER_KEY is not configured (production)")
_URL_SETTINGS = ("site_url", "base_url", "instance_url")


class CatalogPage(msgspec.Struct, kw_only=True):
    data: list[CatalogEntry]


@dataclass(frozen=True, slots=True)
class ConnectorsContext:
    caller: Caller
    commands: ConnectorCommands
    state: State


def provide_context(request: Request[Any, Any, Any]) -> ConnectorsContext:
    state = request.app.state
    return ConnectorsContext(caller=provide_caller(request), commands=state.connector_commands, state=state)


Ctx = NamedDependency[ConnectorsContext]


def connector_ref(connector_id: str) -> str:
    public = canonical("con", connector_id)
    if public is None:
        raise not_found("connector", connector_id)
    return public


def connector_id_of_connector(connector: Connector) -> str:
    return render("con", connector.id)


def run_ref(run_id: str) -> str:
    public = canonical("run", run_id)
    if public is None:
        raise not_found("sync run", run_id)
    return public


def connector_of(accepted: Result) -> ConnectorView:
    row: ConnectorRow | None = None
    for event in accepted.own(ConnectorEvent):
        row = apply_connector(row, event)
    assert row is not None
    return ConnectorView(**{name: getattr(row, name) for name in ConnectorView.__struct_fields__})


def run_of(accepted: Result) -> SyncRunView:
    row: SyncRunView | None = None
    for event in accepted.own(SyncRunEvent):
        row = apply_run(row, event)
    assert row is not None
    return row


async def settle(ctx: ConnectorsContext, accepted: Result) -> dict[str, str]:
    return {"ETag": etag_for(accepted.version),
            **await settle_on(ctx.state, (CONNECTORS_PROJECTION, accepted.position))}


def _check_urls(config: dict[str, Any], settings: Settings) -> None:
    """Provider URLs: https in production (plain http only for development and tests)."""
    for name in _URL_SETTINGS:
        value = config.get(name)
        if isinstance(value, str) and settings.is_production and not value.startswith("https://"):
            raise validation_error(f"config.{name}", "must be an https URL")


def _unavailable() -> ApiError:
    return ApiError(503, "service_unavailable", "Connector credentials need CAUSELOOP_MASTER_KEY (not configured)")



def _after(request: Request[Any, Any, Any], cursor: str | None, sort: str) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    payload = decode_cursor(cursor_key(request), cursor, sort)
    return datetime.fromisoformat(str(payload["v"])), str(payload["i"])


def http_policy(settings: Settings) -> Policy:
    return Policy(timeout_s=settings.connector_http_timeout_s, attempts=settings.connector_http_attempts,
                  max_wait_s=settings.connector_http_max_wait_s, allow_private=settings.private_provider_urls)


class ConnectorCatalogController(Controller):
    path = "/v1/connector-catalog"
    tags = ("Connectors",)
    guards = [requires(READ)]  # noqa: RUF012

    @get("/")
    async def list_connector_types(self) -> CatalogPage:
        """Every connector type: how it authenticates (`auth`, `oauth`), what it ingests, the permissions it needs,
        its `config_schema` and `credentials_schema`, and whether Causeloop polls it (`sync`)."""
        return CatalogPage(data=list(ENTRIES))

    @get("/{connector_type:str}")
    async def get_connector_type(self, connector_type: FromPath[str]) -> CatalogEntry:
        """One connector type (`type` and `oauth` decide the next step: paste credentials, or start OAuth)."""
        entry = CATALOG.get(connector_type)
        if entry is None:
            raise not_found("connector type", connector_type)
        return entry


class ConnectorsController(Controller):
    path = "/v1/connectors"
    tags = ("Connectors",)
    dependencies = {"ctx": Provide(provide_context, sync_to_thread=False)}  # noqa: RUF012

    @post("/", guards=[requires(ADMIN)], status_code=201, responses=UNAVAILABLE)
    async def create_connector(self, data: JSONBody[schemas.CreateConnectorRequest], ctx: Ctx
                               ) -> Response[ConnectorView]:
        """Create a connector. Credentials are encrypted at rest and never returned (`has_credentials`); an OAuth
        type without credentials waits in `pending_auth`. `schedule` is five-field cron (default every 30 min)."""
        _check_urls(data.config, ctx.state.settings)
        try:
            accepted = await ctx.commands.create(
                ctx.caller, connector_type=data.type, display_name=data.display_name, config=dict(data.config),
                schedule=data.schedule, credentials=data.credentials)
        except MasterKeyMissing:
            raise _unavailable() from None
        headers = await settle(ctx, accepted)
        headers["Location"] = f"/v1/connectors/{connector_id_of(accepted)}"
        return Response(connector_of(accepted), status_code=201, headers=headers)

    @get("/", guards=[requires(READ)])
    async def list_connectors(self, request: Request[Any, Any, Any], ctx: Ctx, limit: Limit = 25,
                              cursor: Cursor = None) -> Page[ConnectorView]:
        """The workspace's connectors, oldest first."""
        workspace = ctx.caller.workspace_id
        async with tenant_transaction(ctx.state.read_pool, workspace) as conn:
            rows, total = await queries.list_connectors(conn, workspace, after=_after(request, cursor, "created_at"),
                                                        limit=limit + 1)
        return page_of(rows, limit=limit, total=total, key=cursor_key(request), sort="created_at",
                       position=lambda row: {"v": row.created_at.isoformat(), "i": row.id})

    @get("/{connector_id:str}", guards=[requires(READ)])
    async def get_connector(self, connector_id: FromPath[str], ctx: Ctx) -> Response[ConnectorView]:
        """One connector, with its version as ETag."""
        public_id = connector_ref(connector_id)
        async with tenant_transaction(ctx.state.read_pool, ctx.caller.workspace_id) as conn:
            found = await queries.get_connector(conn, ctx.caller.workspace_id, public_id)
        if found is None:
            raise not_found("connector", connector_id)
        return Response(found, headers={"ETag": etag_for(found.version)})

    @patch("/{connector_id:str}", guards=[requires(ADMIN)], responses={**CHANGED, **UNAVAILABLE})
    async def update_connector(self, request: Request[Any, Any, Any], connector_id: FromPath[str],
                               data: JSONBody[schemas.UpdateConnectorRequest], ctx: Ctx) -> Response[ConnectorView]:
        """Change the name, settings, schedule or credentials (replaced whole); If-Match with a stale ETag is 412."""
        if data.config is not msgspec.UNSET:
            _check_urls(data.config, ctx.state.settings)
        try:
            accepted = await ctx.commands.reconfigure(
                ctx.caller, connector_ref(connector_id), display_name=data.display_name,
                config=data.config if data.config is msgspec.UNSET else dict(data.config), schedule=data.schedule,
                credentials=data.credentials, expected_version=expected_version(request))
        except MasterKeyMissing:
            raise _unavailable() from None
        return Response(connector_of(accepted), headers=await settle(ctx, accepted))

    @delete("/{connector_id:str}", guards=[requires(ADMIN)], status_code=204)
    async def delete_connector(self, connector_id: FromPath[str], ctx: Ctx) -> Response[None]:
        """Delete a connector: it stops syncing; issues it brought in stay."""
        accepted = await ctx.commands.delete(ctx.caller, connector_ref(connector_id))
        return Response(None, status_code=204, headers=await settle(ctx, accepted))

    @post("/{connector_id:str}/pause", guards=[requires(ADMIN)], status_code=200)
    async def pause_connector(self, connector_id: FromPath[str], ctx: Ctx) -> Response[ConnectorView]:
        """Pause: no scheduled or manual sync until resumed (pausing a paused connector is a no-op)."""
        accepted = await ctx.commands.pause(ctx.caller, connector_ref(connector_id))
        return Response(connector_of(accepted), headers=await settle(ctx, accepted))

    @post("/{connector_id:str}/resume", guards=[requires(ADMIN)], status_code=200)
    async def resume_connector(self, connector_id: FromPath[str], ctx: Ctx) -> Response[ConnectorView]:
        """Resume a paused connector (a no-op otherwise)."""
        accepted = await ctx.commands.resume(ctx.caller, connector_ref(connector_id))
        return Response(connector_of(accepted), headers=await settle(ctx, accepted))

    @post("/{connector_id:str}/test", guards=[requires(ADMIN)], status_code=200,
          responses={**SYNC_REFUSED, **UNAVAILABLE})
    async def test_connector(self, connector_id: FromPath[str], ctx: Ctx) -> schemas.ConnectionTest:
        """Call the provider once with the stored credentials. `ok: false` with `outcome` `unauthorized`,
        `unreachable`, `rate_limited` or `provider_error` when it fails (the call is bounded by a timeout)."""
        connector, _ = await ctx.commands.connector(ctx.caller, connector_ref(connector_id))
        check_syncable(connector)
        try:
            credentials = ctx.commands.credentials_of(connector)
        except MasterKeyMissing:
            raise _unavailable() from None
        except UndecryptableSecret:
            return schemas.ConnectionTest(ok=False, outcome="unauthorized", latency_ms=0,
                                          message="the stored credentials cannot be decrypted: set them again")
        started = time.monotonic()
        try:
            async with Http(http_policy(ctx.state.settings)) as http:
                await client_for(connector.type, http, connector.config, credentials).check()
        except ConfigError as exc:
            return schemas.ConnectionTest(ok=False, outcome="provider_error", message=str(exc), latency_ms=0)
        except ProviderError as exc:
            return schemas.ConnectionTest(ok=False, outcome=exc.outcome, message=str(exc),
                                          latency_ms=int((time.monotonic() - started) * 1000))
        return schemas.ConnectionTest(ok=True, outcome="ok", message="the provider accepted the credentials",
                                      latency_ms=int((time.monotonic() - started) * 1000))

    @post("/{connector_id:str}/signing-secret", guards=[requires(ADMIN)], status_code=201, opt=SECRET_RESPONSE,
          responses=UNAVAILABLE)
    async def rotate_connector_signing_secret(self, connector_id: FromPath[str], ctx: Ctx
                                              ) -> Response[schemas.SigningSecret]:
        """Make a new inbound-webhook signing secret (`whsec_…`), shown only in this answer; it replaces the previous
        one at once. Senders sign each delivery's raw body with it (HMAC-SHA256)."""
        try:
            accepted = await ctx.commands.rotate_signing_secret(ctx.caller, connector_ref(connector_id))
        except MasterKeyMissing:
            raise _unavailable() from None
        headers = {**await settle(ctx, accepted), "Cache-Control": "no-store"}
        public_id = connector_id_of(accepted)
        return Response(schemas.SigningSecret(connector_id=public_id, signing_secret=accepted.revealed or "",
                                              inbound_url=f"/v1/webhooks/inbound/{public_id}"),
                        status_code=201, headers=headers)

    @post("/{connector_id:str}/oauth/start", guards=[requires(ADMIN)], status_code=200,
          responses={**error_responses(e422="oauth_not_supported: this type authenticates with an API key"),
                     **error_responses(e503="service_unavailable: no OAuth client configured for this type")})
    async def start_connector_oauth(self, connector_id: FromPath[str], ctx: Ctx) -> OAuthStart:
        """Start the OAuth authorization of an OAuth-type connector: send the person's browser to `authorize_url`.
        Its signed state expires in 10 minutes; the provider returns to `GET /v1/connectors/oauth/callback`."""
        connector, _ = await ctx.commands.connector(ctx.caller, connector_ref(connector_id))
        if not connector.entry.oauth:
            raise ApiError(422, "oauth_not_supported", f"{connector.type} connectors authenticate with an API key")
        return start(ctx.state.settings, connector.type, connector.config, connector_id_of_connector(connector),
                     ctx.caller.workspace_id, ctx.caller.actor.id)

    @post("/{connector_id:str}/sync", guards=[requires(ADMIN)], status_code=202, responses=SYNC_REFUSED)
    async def sync_connector(self, connector_id: FromPath[str], ctx: Ctx) -> Response[SyncRunView]:
        """Queue a sync now (incremental: what changed since the last successful run). The run is `queued`; poll
        `GET /v1/sync-runs/{id}`."""
        accepted = await ctx.commands.queue_run(ctx.caller, connector_ref(connector_id), RunKind.MANUAL)
        return _queued(accepted, await settle(ctx, accepted))

    @post("/{connector_id:str}/backfill", guards=[requires(ADMIN)], status_code=202, responses=SYNC_REFUSED)
    async def backfill_connector(self, connector_id: FromPath[str], data: JSONBody[schemas.BackfillRequest],
                                 ctx: Ctx) -> Response[SyncRunView]:
        """Queue a historical backfill of the last `days` (1–365, default 90); existing issues are updated, never
        duplicated."""
        accepted = await ctx.commands.queue_run(ctx.caller, connector_ref(connector_id), RunKind.BACKFILL,
                                                backfill_days=data.days)
        return _queued(accepted, await settle(ctx, accepted))

    @get("/{connector_id:str}/sync-runs", guards=[requires(READ)])
    async def list_sync_runs(self, request: Request[Any, Any, Any], connector_id: FromPath[str], ctx: Ctx,
                             limit: Limit = 25, cursor: Cursor = None) -> Page[SyncRunView]:
        """The connector's runs (its sync history), newest first."""
        public_id = connector_ref(connector_id)
        workspace = ctx.caller.workspace_id
        async with tenant_transaction(ctx.state.read_pool, workspace) as conn:
            if await queries.get_connector(conn, workspace, public_id) is None:
                raise not_found("connector", connector_id)
            rows, total = await queries.list_runs(conn, workspace, public_id,
                                                  after=_after(request, cursor, "-queued_at"), limit=limit + 1)
        return page_of(rows, limit=limit, total=total, key=cursor_key(request), sort="-queued_at",
                       position=lambda row: {"v": row.queued_at.isoformat(), "i": row.id})


def _queued(accepted: Result, headers: dict[str, str]) -> Response[SyncRunView]:
    run = run_of(accepted)
    headers["Location"] = f"/v1/sync-runs/{run.id}"
    return Response(run, status_code=202, headers=headers)


class SyncRunsController(Controller):
    path = "/v1/sync-runs"
    tags = ("Connectors",)
    dependencies = {"ctx": Provide(provide_context, sync_to_thread=False)}  # noqa: RUF012

    @get("/{run_id:str}", guards=[requires(READ)])
    async def get_sync_run(self, run_id: FromPath[str], ctx: Ctx) -> SyncRunView:
        """One sync run: `status`, `kind`, timing and counts (`records_seen`, `issues_created`, `issues_updated`,
        `issues_unchanged`, `issues_failed`), and `error` when it failed."""
        public_id = run_ref(run_id)
        async with tenant_transaction(ctx.state.read_pool, ctx.caller.workspace_id) as conn:
            found = await queries.get_run(conn, ctx.caller.workspace_id, public_id)
        if found is None:
            raise not_found("sync run", run_id)
        return found
