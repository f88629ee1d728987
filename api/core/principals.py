"""The per-request re-check of a verified token against current state (api.md B "Tokens").

A token says who the caller was when it was minted; the read models say who they are now. One call of the
SECURITY DEFINER function `principal_standing` (projections/standing.sql) reads everything the checks need —
the workspace's status, the caller's membership, the token's session, the MFA requirement — for exactly the
token's workspace, subject and session, and then pure checks decide, in order: each returns the principal
(possibly narrowed) or None, which is a 401. Each API process keeps the answers until a projector announces a
change to the workspace's rows (api/core/standing_cache.py), so a revocation, removal, demotion or offboarding is
refused by every process within moments of its projection, and the hot path costs no round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec
from litestar.datastructures import State

from adapters.postgres import call_definer
from adapters.tokens import Principal
from api.core.standing import Standing
from api.core.standing_cache import StandingCache
from api.signin import checks as signin_checks
from domain.identity.roles import Role, scopes_for

Check = Callable[[Principal, Standing], Principal | None]
_ROLES = {role.value: role for role in Role}

_STANDING: Final = "SELECT * FROM principal_standing(%s, %s, %s)"
"""projections/standing.sql: one parametrized call across the identity, sessions and settings read models."""


OPEN_STATUSES = frozenset({None, "active"})
"""A workspace answers tokens while active (None: the identity projection does not know it yet)."""


def open_workspace(principal: Principal, standing: Standing) -> Principal | None:
    """An offboarded workspace answers no token at all (members', service accounts', SCIM, any other kind)."""
    return principal if standing.workspace_status in OPEN_STATUSES else None


def current_membership(principal: Principal, standing: Standing) -> Principal | None:
    """A user's token holds only while the membership is active; role and scopes are the CURRENT role's,
    never more than the token was minted with."""
    if not principal.subject.startswith("usr_"):
        return principal
    if standing.member_status != "active" or standing.member_role not in _ROLES:
        return None
    role = _ROLES[standing.member_role]
    return msgspec.structs.replace(principal, role=role.value, scopes=principal.scopes & scopes_for(role))


CHECKS: list[Check] = [open_workspace, current_membership, signin_checks.active_session,
                       signin_checks.required_mfa]
"""In order; each context adds its own (sessions and MFA come from sign-in)."""


async def read_standing(state: State, principal: Principal) -> Standing:
    """From this process's cache (api/core/standing_cache.py), else one round trip, no transaction: the function answers
    for exactly this workspace, subject and session."""
    async def read() -> Standing:
        row = await call_definer(state.read_pool, _STANDING, _arguments(principal))
        assert row is not None  # the function's SELECT has no FROM: always its one row
        return msgspec.convert(row, Standing)

    cache: StandingCache = state.standing_cache
    return await cache.get(("standing", *_arguments(principal)), read, lambda _: principal.workspace_id)


def apply_checks(principal: Principal, standing: Standing) -> Principal | None:
    """Every check in order: the principal, possibly narrowed, or None (a 401)."""
    for check in CHECKS:
        checked = check(principal, standing)
        if checked is None:
            return None
        principal = checked
    return principal


async def load_principal(principal: Principal, state: State) -> Principal | None:
    """The `principal_loader` of AuthMiddleware (and of the SCIM guard): one round trip, then every check."""
    return apply_checks(principal, await read_standing(state, principal))


async def workspace_is_open(state: State, workspace_id: str) -> bool:
    """The `open_workspace` check alone, for sign-in before it mints a token or writes anything: one round trip."""
    row = await call_definer(state.read_pool, _STANDING, (workspace_id, "", None))
    assert row is not None  # the function's SELECT has no FROM: always its one row
    return row["workspace_status"] in OPEN_STATUSES


def _arguments(principal: Principal) -> tuple[str, str, str | None]:
    return principal.workspace_id, principal.subject, principal.session_id
