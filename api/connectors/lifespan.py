"""What the connector routes hold open: their command handler, with the credentials' box made on first use, and
the ticket pushes that create through connectors (runs after the main lifespan, whose command runner it uses)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

from litestar import Litestar

from adapters.providers.tickets import Trackers
from adapters.secret_box import SecretBox, master_key
from adapters.settings import Settings
from api.connectors.routes import http_policy
from commands.connectors import BOX_PURPOSE, ConnectorCommands
from commands.tickets import TicketCommands


def _box(settings: Settings) -> SecretBox:
    return SecretBox(master_key(settings), BOX_PURPOSE)


@contextlib.asynccontextmanager
async def connectors_lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.connector_commands = ConnectorCommands(app.state.command_runner, functools.lru_cache(maxsize=1)(
        functools.partial(_box, settings)))
    app.state.ticket_commands = TicketCommands(app.state.command_runner, app.state.connector_commands,
                                               Trackers(http_policy(settings)))
    yield
