"""What the webhook routes hold open: their command handler (runs after the main lifespan, which opens the runner)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from datetime import timedelta

from litestar import Litestar

from adapters.secret_box import SecretBox, master_key
from adapters.settings import Settings
from commands.webhooks import BOX_PURPOSE, WebhookCommands


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(master_key(settings), BOX_PURPOSE)


@contextlib.asynccontextmanager
async def webhooks_lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    box = functools.lru_cache(maxsize=1)(functools.partial(secret_box, settings))
    app.state.webhook_commands = WebhookCommands(app.state.command_runner, box,
                                                 overlap=timedelta(seconds=settings.webhooks_secret_overlap_s))
    yield
