"""Dependencies handed to route handlers: collaborators live on app.state, built once in the lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Request
from litestar.datastructures import State
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from adapters.tokens import Principal
from api.core.client_ip import client_ip
from api.core.errors import not_found
from api.core.idempotency import claim_of
from api.core.request_id import request_id
from commands.caller import Caller
from commands.workspace_settings import WorkspaceSettingsCommands
from domain.events import Actor, ActorKind
from domain.ids import WorkspaceId

T = TypeVar("T")


def provide_read_pool(state: State) -> AsyncConnectionPool[AsyncConn]:
    pool: AsyncConnectionPool[AsyncConn] = state.read_pool
    return pool


def provide_workspace_settings_commands(state: State) -> WorkspaceSettingsCommands:
    commands: WorkspaceSettingsCommands = state.workspace_settings_commands
    return commands


def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    """The verified principal as the write side sees it: workspace, actor, the request id as correlation, the IP."""
    principal: Principal = request.user
    kind = ActorKind.SERVICE_ACCOUNT if principal.subject.startswith("sa_") else ActorKind.USER
    return Caller(workspace_id=WorkspaceId(principal.workspace_id), actor=Actor(kind=kind, id=principal.subject),
                  correlation_id=request_id(request.scope), client_ip=client_ip(request.scope),
                  claim=claim_of(request.scope))


async def read_one(request: Request[Any, Any, Any], kind: str, public_id: str,
                   get: Callable[[AsyncConn, str, str], Awaitable[T | None]]) -> T:
    """One `kind` of the caller's workspace from its read model (`get(conn, workspace_id, id)`), or 404 `not_found`
    (another workspace's id included)."""
    caller = provide_caller(request)
    async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
        found = await get(conn, caller.workspace_id, public_id)
    if found is None:
        raise not_found(kind, public_id)
    return found
