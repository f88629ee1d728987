"""Bearer-token authentication for every /v1 route, and the scope each route declares.

A /v1 route declares its access in one of three ways, checked when the app is built:
`guards=[requires("issues:read")]` (a scope), `guards=[requires_any("a", "b")]` (one of several scopes),
`guards=[authenticated]` (any valid token, e.g. /v1/me),
or `opt=PUBLIC` (no token at all, e.g. /v1/auth/exchange). Handlers get the caller as
`principal: CurrentPrincipal` (the dependency) or `request.user`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Final, TypeAlias, cast

from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.openapi.spec import SecurityRequirement, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

from adapters.settings import Settings
from adapters.tokens import InvalidToken, Principal, TokenVerifier
from api.core.errors import ApiError
from api.core.request_id import header_value
from domain.identity.roles import ALL_SCOPES

API_PREFIX = "/v1"
BEARER_SCHEME_NAME = "BearerAuth"
BEARER_SCHEME = SecurityScheme(type="http", scheme="bearer", bearer_format="JWT",
                               description="Causeloop access token (HS256 JWT) from /v1/auth/exchange, a personal "
                                           "API token (clp_pat_…) or a service-account token (clp_sa_…)")
BEARER_REQUIREMENT: SecurityRequirement = {BEARER_SCHEME_NAME: []}
PUBLIC_OPT_KEY = "public"
PUBLIC: Final[dict[str, Any]] = {PUBLIC_OPT_KEY: True}
MFA_EXEMPT_PATHS = ("/v1/me/mfa/", "/v1/users/me")
"""Reachable without a second factor in a workspace that requires MFA: enrolling it, and who am I."""

CurrentPrincipal: TypeAlias = NamedDependency[Principal]
"""Handler parameter type for the caller: `principal: CurrentPrincipal` (Litestar 2.23+ wants named deps marked)."""

PrincipalLoader = Callable[[Principal, State], Awaitable[Principal | None]]
"""Re-checks a verified token against current state (membership, revocation); None means 401."""

TokenResolver = Callable[[str, State], Awaitable[Principal | None]]
"""Turns an opaque `clp_…` bearer secret into its Principal (None: unknown, revoked or expired → 401)."""
OPAQUE_PREFIX = "clp_"


def unauthorized(message: str, *, invalid_token: bool) -> ApiError:
    challenge = 'Bearer error="invalid_token"' if invalid_token else "Bearer"
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


class ScopeGuard:
    """A route guard: the caller's token must carry `scope` (or just be valid, when `scope` is None)."""

    def __init__(self, scope: str | None) -> None:
        if scope is not None and scope not in ALL_SCOPES:
            raise ValueError(f"unknown scope {scope!r}; add it to domain.identity.roles first")
        self.scope = scope

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        """Async although it never awaits: Litestar runs a sync guard on a worker thread, a hop per request."""
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal):
            raise unauthorized("Missing bearer token", invalid_token=False)
        self.check(principal)

    def check(self, principal: Principal) -> None:
        """403 unless `principal` carries the scope."""
        if self.scope is not None and self.scope not in principal.scopes:
            raise ApiError(403, "forbidden", f"This token lacks the scope {self.scope}",
                           {"required_scope": self.scope})

    def __repr__(self) -> str:
        return f"requires({self.scope!r})"


def requires(scope: str) -> ScopeGuard:
    """`guards=[requires("issues:write")]`: 403 `forbidden` unless the token carries the scope."""
    return ScopeGuard(scope)


class AnyScopeGuard(ScopeGuard):
    """A route guard: the caller's token must carry at least one of `scopes`.

    Its `scope` reads `a|b` (`|` = any of), which is how `route_scope` and the OpenAPI 403 text report it.
    """

    def __init__(self, *scopes: str) -> None:
        if len(scopes) < 2:
            raise ValueError("requires_any needs two or more scopes; use requires(scope) for one")
        self.scopes = frozenset(ScopeGuard(scope).scope or "" for scope in scopes)
        self.scope = "|".join(sorted(self.scopes))

    def check(self, principal: Principal) -> None:
        if not self.scopes & principal.scopes:
            raise ApiError(403, "forbidden", f"This token lacks any of the scopes {', '.join(sorted(self.scopes))}",
                           {"required_scope": self.scope})

    def __repr__(self) -> str:
        return f"requires_any({', '.join(repr(s) for s in sorted(self.scopes))})"


def requires_any(*scopes: str) -> AnyScopeGuard:
    """`guards=[requires_any("workspace.compliance:write", "workspace:admin")]`: 403 unless one is carried."""
    return AnyScopeGuard(*scopes)


authenticated: Final = ScopeGuard(None)
"""`guards=[authenticated]`: any valid token, no particular scope (e.g. /v1/me)."""


def is_public(handler: BaseRouteHandler) -> bool:
    return bool(handler.opt.get(PUBLIC_OPT_KEY))


def scope_guards(handler: BaseRouteHandler) -> list[ScopeGuard]:
    # The declared guards of every layer (app, router, controller, handler); resolve_guards() wraps them.
    return [g for layer in handler.ownership_layers for g in layer.guards or () if isinstance(g, ScopeGuard)]


def route_scope(handler: BaseRouteHandler) -> str | None:
    """The scope(s) a route requires, space separated, or None (public or any-valid-token routes)."""
    scopes = sorted({g.scope for g in scope_guards(handler) if g.scope is not None})
    return " ".join(scopes) or None


def is_preflight(handler: HTTPRouteHandler) -> bool:
    """Litestar's own OPTIONS handler (CORS preflight): open, like every framework's."""
    return set(handler.http_methods) == {"OPTIONS"}


def declares_access(handler: HTTPRouteHandler) -> bool:
    """True when a route says who may call it: a scope, `authenticated`, or PUBLIC."""
    return is_preflight(handler) or is_public(handler) or bool(scope_guards(handler))


def under_api_prefix(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def http_handlers(app: Litestar) -> Iterator[tuple[str, HTTPRouteHandler]]:
    """(path, handler) for every HTTP route handler of a built app."""
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                yield route.path, handler


def undeclared_routes(routes: Iterable[tuple[str, HTTPRouteHandler]]) -> list[str]:
    """`METHOD /path` of every /v1 handler that declares neither a scope, `authenticated`, nor PUBLIC."""
    return sorted(
        f"{method} {path}"
        for path, handler in routes if under_api_prefix(path) and not declares_access(handler)
        for method in sorted(handler.http_methods)
    )


def bearer_token(scope: Scope) -> str | None:
    header = header_value(scope, b"authorization")
    if header is None:
        return None
    kind, _, token = header.strip().partition(" ")
    if kind.lower() != "bearer":
        return None
    return token.strip() or None


def _exempt(scope: Scope) -> bool:
    return not under_api_prefix(scope["path"]) or cast("HTTPScope", scope)["method"] == "OPTIONS"


class AuthMiddleware(ASGIMiddleware):
    """Verifies the bearer token on /v1 routes not marked PUBLIC (nor OPTIONS); sets `scope["user"]`."""

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = PUBLIC_OPT_KEY
    should_bypass_for_scope = staticmethod(_exempt)

    def __init__(self, settings: Settings, loader: PrincipalLoader | None = None,
                 resolver: TokenResolver | None = None) -> None:
        self.settings = settings
        self.loader = loader
        self.resolver = resolver
        self.verifier = TokenVerifier(settings)

    async def _principal(self, token: str, state: State) -> Principal:
        """A JWT is verified here; an opaque `clp_…` secret (API token) is looked up by the resolver."""
        if token.startswith(OPAQUE_PREFIX):
            principal = None if self.resolver is None else await self.resolver(token, state)
            if principal is None:
                raise unauthorized("Invalid, revoked or expired bearer token", invalid_token=True)
            return principal
        try:
            return self.verifier.verify(token)
        except InvalidToken:
            raise unauthorized("Invalid or expired bearer token", invalid_token=True) from None

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        token = bearer_token(scope)
        if token is None:
            raise unauthorized("Missing bearer token", invalid_token=False)
        state = scope["litestar_app"].state
        principal = await self._principal(token, state)
        scope["auth"] = token
        if self.loader is not None:
            scope["user"] = admit(await self.loader(principal, state), scope["path"])
        else:
            scope["user"] = admit(principal, scope["path"])
        await next_app(scope, receive, send)


def admit(principal: Principal | None, path: str) -> Principal:
    """The caller as re-checked against current state (None: 401), held to the workspace's MFA requirement."""
    if principal is None:
        raise unauthorized("The token was revoked or its membership ended", invalid_token=True)
    if principal.needs_mfa and not path.startswith(MFA_EXEMPT_PATHS):
        raise ApiError(403, "mfa_required", "This workspace requires MFA: sign in again with a TOTP code",
                       {"factor": "totp"})
    return principal


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Dependency `principal`: the verified caller (401 on a route that has none, e.g. a PUBLIC one)."""
    principal = request.scope.get("user")
    if not isinstance(principal, Principal):
        raise unauthorized("Missing bearer token", invalid_token=False)
    return principal
