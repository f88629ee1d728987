"""What the connector routes hold open: their command handler, with the credentials' box made on first use
(runs after the main lifespan, whose command runner it uses)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

from litestar import Litestar

from adapters.secret_box import SecretBox, master_key
from adapters.settings import Settings
from commands.connectors import BOX_PURPOSE, ConnectorCommands


def _box(settings: Settings) -> SecretBox:
    return SecretBox(master_key(settings), BOX_PURPOSE)


@contextlib.asynccontextmanager
async def connectors_lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.connector_commands = ConnectorCommands(app.state.command_runner, functools.lru_cache(maxsize=1)(
        functools.partial(_box, settings)))
    yield
