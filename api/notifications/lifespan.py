"""What the watch and preference routes hold open: their command handler, with the channel secrets' box made on
first use (runs after the main lifespan, whose command runner it uses)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

from litestar import Litestar

from adapters.secret_box import SecretBox, master_key
from adapters.settings import Settings
from commands.notifications import BOX_PURPOSE, NotificationSettingsCommands


def _box(settings: Settings) -> SecretBox:
    return SecretBox(master_key(settings), BOX_PURPOSE)


@contextlib.asynccontextmanager
async def notifications_lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.notification_settings_commands = NotificationSettingsCommands(
        app.state.command_runner, functools.lru_cache(maxsize=1)(functools.partial(_box, settings)))
    yield
