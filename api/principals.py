"""The per-request re-check of a verified token against current state (api.md B "Tokens").

A token says who the caller was when it was minted; the read models say who they are now. One statement,
in one read-only transaction of the token's workspace (RLS applies), reads everything the checks need —
the workspace's status, the caller's membership, the token's session, the MFA requirement — and then pure
checks decide, in order: each returns the principal (possibly narrowed) or None, which is a 401. Because
every command that changes any of these answers only after its projection has the change, a removed
member's very next request fails on any replica, and a new role applies at once.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from litestar.datastructures import State
from psycopg.rows import class_row

from adapters.postgres import tenant_transaction
from adapters.tokens import Principal
from api.signin import checks as signin_checks
from api.standing import Standing
from domain.identity.roles import Role, scopes_for

Check = Callable[[Principal, Standing], Principal | None]
_ROLES = {role.value: role for role in Role}

_STANDING = """
SELECT
    (SELECT status FROM workspaces WHERE id = %(ws)s) AS workspace_status,
    (SELECT role FROM memberships WHERE workspace_id = %(ws)s AND user_id = %(sub)s) AS member_role,
    (SELECT status FROM memberships WHERE workspace_id = %(ws)s AND user_id = %(sub)s) AS member_status,
    (SELECT status FROM auth_sessions WHERE workspace_id = %(ws)s AND id = %(sid)s) AS session_status,
    coalesce((SELECT mfa_required FROM workspace_settings WHERE workspace_id = %(ws)s), false) AS mfa_required
"""


def open_workspace(principal: Principal, standing: Standing) -> Principal | None:
    """An offboarded workspace answers no token at all (members', service accounts', any other kind)."""
    return None if standing.workspace_status not in (None, "active") else principal


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
    async with tenant_transaction(state.read_pool, principal.workspace_id) as conn, \
            conn.cursor(row_factory=class_row(Standing)) as cur:
        await cur.execute(_STANDING, {"ws": principal.workspace_id, "sub": principal.subject,
                                      "sid": principal.session_id})
        standing = await cur.fetchone()
    assert standing is not None  # a SELECT without FROM always yields its one row
    return standing


async def load_principal(principal: Principal, state: State) -> Principal | None:
    """The `principal_loader` of AuthMiddleware: one round trip, then every check."""
    standing = await read_standing(state, principal)
    for check in CHECKS:
        checked = check(principal, standing)
        if checked is None:
            return None
        principal = checked
    return principal
