"""What sign-in and MFA hold open: their command handlers and the Clerk verifier (runs after the main lifespan)."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator

from litestar import Litestar

from adapters.clerk import verifier_for
from adapters.secret_box import SecretBox, master_key
from adapters.settings import Settings
from commands.mfa import BOX_PURPOSE, MfaCommands
from commands.signin import SignInCommands

log = logging.getLogger(__name__)


def _box(settings: Settings) -> SecretBox:
    return SecretBox(master_key(settings), BOX_PURPOSE)


@contextlib.asynccontextmanager
async def signin_lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    verifier = verifier_for(settings)
    if verifier is None:
        log.warning("CLERK_JWKS_URL is not set in production: POST /v1/auth/exchange answers 503")
    if settings.is_production and not settings.causeloop_master_key:
        log.warning("CAUSELOOP_MASTER_KEY is not set in production: the MFA routes answer 503")
    app.state.update(signin_commands=SignInCommands(app.state.command_runner), clerk_verifier=verifier,
                     mfa_commands=MfaCommands(app.state.command_runner, functools.lru_cache(maxsize=1)(
                         functools.partial(_box, settings))))
    yield
