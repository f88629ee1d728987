"""The API conventions every route gets from app-level configuration: one plugin, one kwargs dict.

`Litestar(route_handlers=[...], lifespan=[...], **convention_config(settings))` installs, in this order
around every routed request: rate limit → request target policy (api/core/input_policy.py) → bearer auth (/v1, unless
PUBLIC) → JSON content type →
idempotency → the route (its guards check scopes). Hooks stamp `X-Request-Id` and `X-RateLimit-*` on
every response, 404/405 included, and one exception handler writes the error envelope.

App state: `app.state[api.core.client_ip.STATE_KEY]` decides each request's client address (TRUSTED_PROXIES);
`app.state.infra_pool` (a small autocommit psycopg pool, search_path = the schema) serves the rate-limit,
idempotency and TOTP-attempt tables; the plugin owns it (opens it in its lifespan, closes it on shutdown).
Dependency: `principal: CurrentPrincipal` in any handler of a non-public /v1 route (or `request.user`).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, get
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.exceptions import ImproperlyConfiguredException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import InitPlugin, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.status_codes import HTTP_204_NO_CONTENT
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, connect_kwargs, conninfo
from adapters.settings import Settings
from api.core.auth import (
    BEARER_REQUIREMENT,
    BEARER_SCHEME,
    BEARER_SCHEME_NAME,
    MFA_EXEMPT_PATHS,
    AuthMiddleware,
    PrincipalLoader,
    TokenResolver,
    declares_access,
    is_preflight,
    is_public,
    provide_principal,
    route_scope,
    under_api_prefix,
)
from api.core.client_ip import STATE_KEY as CLIENT_ADDRESSES
from api.core.client_ip import ClientAddresses
from api.core.content_type import JsonContentTypeMiddleware, takes_json_body
from api.core.errors import ErrorEnvelope, error_responses, exception_handlers
from api.core.idempotency import IDEMPOTENT_METHODS, SECRET_RESPONSE_OPT_KEY, IdempotencyMiddleware
from api.core.input_policy import ClosedBodySchema, PolicyRequest, RequestBody, TargetPolicyMiddleware
from api.core.rate_limit import INFRA_POOL, RateLimiter, RateLimitMiddleware, stamp_rate_limit_headers
from api.core.request_id import stamp_request_id

INFRA_POOL_MAX_SIZE = 4
DOCS_PATH = "/docs"


def _error_responses(handler: HTTPRouteHandler, path: str) -> dict[int, ResponseSpec]:
    """The errors the conventions answer before a route's handler: on every route the input policy's 400 and the
    rate limit's 429, on /v1 routes also those of auth, ids, idempotency and media types. A route documents its
    own beyond these (its text wins, the conventions' is appended)."""
    errors = {"e400": "validation_error: details name the offending field(s)",
              "e429": "rate_limited: see Retry-After; details give the limit and retry_after (seconds)"}
    if under_api_prefix(path):
        errors |= _v1_errors(handler, path)
    responses = error_responses(**errors)
    if handler.status_code == HTTP_204_NO_CONTENT:  # Litestar documents a `Response[None]` as a JSON null
        responses[HTTP_204_NO_CONTENT] = ResponseSpec(data_container=None, description="Done; no body")
    return responses


def _v1_errors(handler: HTTPRouteHandler, path: str) -> dict[str, str]:
    guarded, scope = not is_public(handler), route_scope(handler)
    errors = {}
    if guarded:
        errors["e401"] = "unauthorized: missing, invalid or expired bearer token"
    forbidden = [f"forbidden: the token lacks the scope {scope}"] if scope else []
    if guarded and not path.startswith(MFA_EXEMPT_PATHS):
        forbidden.append("mfa_required: the workspace requires MFA and the token was minted without it")
    if forbidden:
        errors["e403"] = "; ".join(forbidden)
    if "{" in path:
        errors["e404"] = "not_found: no such id here (malformed ids and other workspaces' ids look the same)"
    if guarded and handler.http_methods & IDEMPOTENT_METHODS and not handler.opt.get(SECRET_RESPONSE_OPT_KEY):
        errors["e409"] = "idempotency_in_progress: a request with this Idempotency-Key is still running"
        errors["e422"] = "idempotency_key_reused: this Idempotency-Key came with another body"
    if takes_json_body(handler):
        errors["e413"] = "payload_too_large: the body is over MAX_BODY_BYTES"
        errors["e415"] = "unsupported_media_type: the body is not application/json"
    return errors


def _with_route_responses(conventional: dict[int, ResponseSpec],
                          own: Mapping[int, ResponseSpec]) -> dict[int, ResponseSpec]:
    merged = {**conventional, **own}
    for status in conventional.keys() & own.keys():
        if own[status].data_container is ErrorEnvelope:
            merged[status] = dataclasses.replace(
                own[status], description=f"{own[status].description}; {conventional[status].description}")
    return merged


def _refuse_untyped_body(handler: HTTPRouteHandler, path: str) -> None:
    """Every route's body derives from RequestBody, whose decoding applies the input policy to datetimes."""
    body = handler.parsed_fn_signature.parameters.get("data")
    if body is not None and not all(part.is_subclass_of(RequestBody)
                                    for part in (body.inner_types if body.is_union else (body,))
                                    if not part.is_none_type):
        raise ImproperlyConfiguredException(
            f"{sorted(handler.http_methods)} {path} takes a body of {body.annotation!r}: request bodies "
            "derive from api.core.input_policy.RequestBody (the input policy normalizes their datetimes)")


class ApiConventions(InitPlugin, ReceiveRoutePlugin):
    """Installs middleware, hooks, error handlers, the `principal` dependency, the infra pool, OpenAPI security."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 principal_loader: PrincipalLoader | None = None,
                 token_resolver: TokenResolver | None = None,
                 enforce_declared_access: bool = True) -> None:
        self.settings = settings
        self.rate_limiter = RateLimiter(settings.rate_limit_per_minute, clock)
        self.principal_loader = principal_loader
        self.token_resolver = token_resolver
        self.enforce_declared_access = enforce_declared_access
        self._operations: dict[str, str] = {}

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware[:0] = [
            RateLimitMiddleware(self.rate_limiter),
            TargetPolicyMiddleware(),
            AuthMiddleware(self.settings, self.principal_loader, self.token_resolver),
            JsonContentTypeMiddleware(),
            IdempotencyMiddleware(),
        ]
        app_config.state[CLIENT_ADDRESSES] = ClientAddresses(self.settings.trusted_proxy_networks)
        app_config.before_send[:0] = [stamp_request_id, stamp_rate_limit_headers]
        app_config.after_exception.insert(0, self.rate_limiter.count_unrouted)
        app_config.exception_handlers = {**exception_handlers(), **app_config.exception_handlers}
        app_config.dependencies.setdefault("principal", Provide(provide_principal, sync_to_thread=False))
        app_config.lifespan.append(self.infra_pool_lifespan)
        if app_config.openapi_config is not None:
            app_config.openapi_config = with_bearer_scheme(app_config.openapi_config)
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            if is_preflight(handler):
                continue
            self._claim_operation_id(handler, route.path)
            _refuse_untyped_body(handler, route.path)
            if under_api_prefix(route.path):
                self._check_access(handler, route.path)
            handler.responses = _with_route_responses(_error_responses(handler, route.path), handler.responses or {})

    def _claim_operation_id(self, handler: HTTPRouteHandler, path: str) -> None:
        """Every documented operation's id is its handler's name in lowerCamelCase (`list_issues` → `listIssues`), so
        a generated client's functions read well; two handlers of one name would collide: the app refuses to start."""
        if not handler.include_in_schema or path == DOCS_PATH or path.startswith(DOCS_PATH + "/"):
            return  # the explorer's own routes
        identity = operation_id(handler, None, path.split("/"))
        for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
            owner = self._operations.setdefault(identity, f"{method} {path}")
            if owner != f"{method} {path}":
                raise ImproperlyConfiguredException(
                    f"{method} {path} and {owner} would share the operationId {identity!r}: give one of their "
                    "handlers a more specific name")

    def _check_access(self, handler: HTTPRouteHandler, path: str) -> None:
        """A /v1 route says who may call it, and the OpenAPI document says it takes the bearer scheme."""
        if self.enforce_declared_access and not declares_access(handler):
            raise ImproperlyConfiguredException(
                f"{sorted(handler.http_methods)} {path} declares no access: add "
                "guards=[requires(scope)], guards=[authenticated] or opt=PUBLIC")
        if not is_public(handler) and BEARER_REQUIREMENT not in (handler.security or []):
            handler.security = [*(handler.security or []), BEARER_REQUIREMENT]

    @asynccontextmanager
    async def infra_pool_lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """Autocommit: the rate limiter's upsert on a hot row must not hold its lock across an await."""
        pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
            conninfo(self.settings), min_size=1, max_size=INFRA_POOL_MAX_SIZE, name="causeloop-infra",
            kwargs={**connect_kwargs(self.settings), "autocommit": True}, open=False,
        )
        # Not waiting: with Postgres down the app still starts, and the rate limit fails open.
        await pool.open(wait=False)
        app.state[INFRA_POOL] = pool
        try:
            yield
        finally:
            del app.state[INFRA_POOL]
            await pool.close()


def with_bearer_scheme(config: OpenAPIConfig) -> OpenAPIConfig:
    """A copy of `config` whose components also define the `BearerAuth` http bearer (JWT) scheme."""
    existing = config.components if isinstance(config.components, list) else [config.components]
    ours = Components(security_schemes={BEARER_SCHEME_NAME: BEARER_SCHEME})
    # A shallow copy, not dataclasses.replace: replace() re-passes OpenAPIConfig's deprecated fields and warns.
    copied = copy.copy(config)
    copied.components = [*existing, ours]
    return copied


def operation_id(handler: HTTPRouteHandler, _: object = None, path_components: Sequence[object] = ()) -> str:
    """The OpenAPI operationId of a handler: its name in lowerCamelCase; a handler mounted on several paths adds
    the path's words (OpenAPI wants every id unique)."""
    first, *rest = handler.handler_name.split("_")
    words = rest
    if len(handler.paths) > 1:
        words = [*rest, *(part for c in path_components if isinstance(c, str) for part in re.split(r"[^a-z0-9]+", c)
                          if part)]
    return first + "".join(word.title() for word in words)


def openapi_config(*, title: str = "Causeloop API", version: str = "1.0.0",
                   security_schemes: Mapping[str, SecurityScheme] | None = None) -> OpenAPIConfig:
    """The explorer at /docs (JSON at /docs/openapi.json); register `openapi_json` for the root /openapi.json.
    `security_schemes` are those of routes outside /v1 (the conventions add /v1's bearer scheme)."""
    return OpenAPIConfig(title=title, version=version, path=DOCS_PATH, render_plugins=[SwaggerRenderPlugin(path="/")],
                         components=Components(security_schemes=dict(security_schemes or {})),
                         operation_id_creator=operation_id)


@get("/openapi.json", include_in_schema=False, sync_to_thread=False)
def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenAPI document at the root, as api.md A lists it."""
    return request.app.openapi_schema.to_schema()


def convention_config(settings: Settings, *, security_schemes: Mapping[str, SecurityScheme] | None = None,
                      **plugin_options: Any) -> dict[str, Any]:
    """Keyword arguments for `Litestar(...)`; `security_schemes` go to `openapi_config`, `plugin_options` to
    ApiConventions (clock, principal_loader, token_resolver).

    `request_max_body_size` is a constructor argument because Litestar ignores it when a plugin sets it.
    """
    return {
        "plugins": [ApiConventions(settings, **plugin_options), ClosedBodySchema()],
        "openapi_config": openapi_config(security_schemes=security_schemes),
        "request_max_body_size": settings.max_body_bytes,
        "request_class": PolicyRequest,
    }
