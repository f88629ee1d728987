"""Principal checks of sign-in (appended to api.principals.CHECKS): the token's session, and the MFA requirement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from adapters.postgres import AsyncConn
from adapters.tokens import Principal
from projections.sessions import queries
from projections.workspace_settings.queries import mfa_required

MfaPolicy = Callable[[AsyncConn, str], Awaitable[bool]]
"""Whether a workspace requires MFA (the settings read model's `mfa_required(conn, workspace_id)`)."""

# Credentials that are not a sign-in (API tokens of any kind) are not asked for a second factor.
_NOT_SIGN_IN_KINDS = frozenset({"personal", "pat", "service_account", "sa", "scim"})


async def active_session(principal: Principal, conn: AsyncConn) -> Principal | None:
    """A token from a sign-in holds only while its session (refresh-token family) is active."""
    if principal.session_id is None:
        return principal
    return principal if await queries.session_active(conn, principal.workspace_id, principal.session_id) else None


def mfa_requirement(policy: MfaPolicy) -> Callable[[Principal, AsyncConn], Awaitable[Principal | None]]:
    """A user token minted without a second factor, in a workspace that requires MFA, is marked `needs_mfa`;
    AuthMiddleware then answers 403 `mfa_required` everywhere but the MFA routes and /v1/users/me."""

    async def check(principal: Principal, conn: AsyncConn) -> Principal | None:
        if principal.mfa or not principal.subject.startswith("usr_"):
            return principal
        if getattr(principal, "kind", None) in _NOT_SIGN_IN_KINDS:
            return principal
        if await policy(conn, principal.workspace_id):
            return msgspec.structs.replace(principal, needs_mfa=True)
        return principal

    return check


workspace_requires_mfa: MfaPolicy = mfa_required
"""The workspace setting, from the `workspace_settings` read model; looked up per call so tests may swap it."""


async def _policy(conn: AsyncConn, workspace_id: str) -> bool:
    return await workspace_requires_mfa(conn, workspace_id)


required_mfa = mfa_requirement(_policy)
