"""Principal checks of sign-in (part of api.core.principals.CHECKS): the token's session, and the MFA requirement."""

from __future__ import annotations

import msgspec

from adapters.tokens import Principal
from api.core.standing import Standing

# Credentials that are not a sign-in (API tokens of any kind) are not asked for a second factor.
_NOT_SIGN_IN_KINDS = frozenset({"personal", "pat", "service_account", "sa", "scim"})


def active_session(principal: Principal, standing: Standing) -> Principal | None:
    """A token from a sign-in holds only while its session (refresh-token family) is active."""
    if principal.session_id is None:
        return principal
    return principal if standing.session_status == "active" else None


def required_mfa(principal: Principal, standing: Standing) -> Principal | None:
    """A user token minted without a second factor, in a workspace that requires MFA, is marked `needs_mfa`;
    AuthMiddleware then answers 403 `mfa_required` everywhere but the MFA routes and /v1/users/me."""
    if principal.mfa or not principal.subject.startswith("usr_"):
        return principal
    if getattr(principal, "kind", None) in _NOT_SIGN_IN_KINDS:
        return principal
    return msgspec.structs.replace(principal, needs_mfa=True) if standing.mfa_required else principal
