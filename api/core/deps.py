"""Dependencies handed to route handlers: collaborators live on app.state, built once in the lifespan."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn
from adapters.tokens import Principal
from api.core.client_ip import client_ip
from api.core.idempotency import claim_of
from api.core.request_id import request_id
from commands.caller import Caller
from commands.workspace_settings import WorkspaceSettingsCommands
from domain.events import Actor, ActorKind
from domain.ids import WorkspaceId


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
