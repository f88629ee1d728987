"""The SCIM guard: /scim/v2 lies outside /v1 (no scope check there), and only a workspace SCIM token opens it.

A personal, service-account or JWT bearer is refused here, just as a SCIM token is refused on /v1. The token's
caller then passes the same per-request checks as every /v1 token (api/core/principals.py): an offboarded workspace
answers 401 before any SCIM route reads or writes.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import SecurityRequirement, SecurityScheme

from adapters.tokens import Principal
from api.core.auth import bearer_token
from api.core.principals import load_principal
from api.credentials.authn import PRINCIPAL_KIND, lookup
from api.scim.protocol import ScimError
from commands.scim import SCIM_LEVEL
from domain.credentials.events import TokenKind

SCIM_KINDS = frozenset({TokenKind.SCIM})
SCIM_SCHEME_NAME = "ScimBearer"
SCIM_SCHEME = SecurityScheme(type="http", scheme="bearer",
                             description="A workspace's SCIM token (clp_scim_…) from POST /v1/settings/scim-tokens")
SCIM_REQUIREMENT: SecurityRequirement = {SCIM_SCHEME_NAME: []}


async def scim_token(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Sets `scope["user"]` to the SCIM token's principal (subject = the token id), or answers 401."""
    secret = bearer_token(connection.scope)
    if secret is None:
        raise ScimError(401, "Missing bearer token: use a SCIM token (clp_scim_…)")
    match = await lookup(connection.app.state, secret, SCIM_KINDS)
    if match is None:
        raise ScimError(401, "Invalid, revoked or expired SCIM token")
    _, found = match
    principal = await load_principal(
        Principal(subject=found.token_id, workspace_id=found.workspace_id, role=SCIM_LEVEL.value, scopes=frozenset(),
                  token_id=found.token_id, kind=PRINCIPAL_KIND[TokenKind.SCIM]), connection.app.state)
    if principal is None:
        raise ScimError(401, "This SCIM token's workspace accepts no token any more")
    connection.scope["user"] = principal
