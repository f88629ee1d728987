"""The per-request re-check of a verified token against current state (api.md B "Tokens").

A token says who the caller was when it was minted; these checks say who they are now. They run in order
inside one read-only transaction of the caller's workspace (RLS applies), after the signature check:
each returns the principal (possibly narrowed) or None, which is a 401. Because every command that changes
a membership answers only after the `identity` projection has it, a removed member's very next request —
on any replica — fails, and a new role applies at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from litestar.datastructures import State

from adapters.postgres import AsyncConn, tenant_transaction
from adapters.tokens import Principal
from domain.identity.roles import Role, scopes_for
from projections.identity import queries

Check = Callable[[Principal, AsyncConn], Awaitable[Principal | None]]


async def current_membership(principal: Principal, conn: AsyncConn) -> Principal | None:
    """A user's token holds only while the membership is active; role and scopes are the CURRENT role's,
    never more than the token was minted with."""
    if not principal.subject.startswith("usr_"):
        return principal
    row = await queries.membership(conn, principal.workspace_id, principal.subject)
    if row is None or row.status != "active":
        return None
    try:
        role = Role(row.role)
    except ValueError:
        return None
    return msgspec.structs.replace(principal, role=role.value,
                                  scopes=principal.scopes & scopes_for(role))


async def open_workspace(principal: Principal, conn: AsyncConn) -> Principal | None:
    """An offboarded workspace answers no token at all (members', service accounts', any other kind)."""
    cur = await conn.execute("SELECT status FROM workspaces WHERE id = %s", (principal.workspace_id,))
    row = await cur.fetchone()
    return None if row is not None and row["status"] != "active" else principal


CHECKS: list[Check] = [open_workspace, current_membership]
"""In order; other contexts append theirs (sessions, MFA, service accounts)."""


async def load_principal(principal: Principal, state: State) -> Principal | None:
    """The `principal_loader` of AuthMiddleware: every check, one transaction, one workspace."""
    async with tenant_transaction(state.read_pool, principal.workspace_id) as conn:
        for check in CHECKS:
            checked = await check(principal, conn)
            if checked is None:
                return None
            principal = checked
    return principal
