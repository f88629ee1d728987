"""MFA commands: enrol a TOTP secret (stored encrypted), activate it, remove it. One stream per user."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast
from uuid import UUID

from adapters import totp
from adapters.ids import keyed_uuid
from adapters.secret_box import SecretBox
from commands.caller import Caller
from commands.runner import CommandRunner, Context, Decision, Result
from domain.ids import UserId
from domain.mfa import factor as factors
from domain.mfa.events import AnyMfaEvent, MfaEvent
from domain.mfa.factor import TotpFactor

BOX_PURPOSE = "mfa-totp"


def mfa_stream(user_id: str) -> UUID:
    return keyed_uuid("mfa", user_id)


class MfaCommands:
    """`box` is a factory: the master key is only needed (and only required in production) when MFA is used."""

    def __init__(self, runner: CommandRunner, box: Callable[[], SecretBox]) -> None:
        self._runner = runner
        self._box = box

    async def factor(self, user_id: str) -> TotpFactor | None:
        return factors.project_factor(None, cast(list[AnyMfaEvent], await self._runner.load(mfa_stream(user_id),
                                                                                           MfaEvent)))

    def secret_of(self, factor: TotpFactor) -> str:
        return self._box().open(factor.secret_ciphertext, factor.user_id)

    async def enrol(self, user_id: UserId, caller: Caller) -> Result:
        """A new TOTP secret, sealed in the event; in plain text only in the result's `revealed`."""
        secret = totp.new_secret()
        sealed = self._box().seal(secret, user_id)

        async def deciding(context: Context) -> Decision:
            stream_id, history, current = await self._load(context, user_id)
            return Decision(stream_id, history, [factors.enrol_totp(
                current, stream_id=stream_id, user_id=user_id, secret_ciphertext=sealed, meta=context.meta)],
                revealed=secret)

        return await self._runner.run(caller, deciding)

    async def activate(self, user_id: UserId, caller: Caller) -> Result:
        async def deciding(context: Context) -> Decision:
            stream_id, history, current = await self._load(context, user_id)
            return Decision(stream_id, history, factors.activate_totp(current, context.meta))

        return await self._runner.run(caller, deciding)

    async def remove(self, user_id: UserId, caller: Caller) -> Result:
        async def deciding(context: Context) -> Decision:
            stream_id, history, current = await self._load(context, user_id)
            return Decision(stream_id, history, [factors.remove_totp(current, context.meta)])

        return await self._runner.run(caller, deciding)

    @staticmethod
    async def _load(context: Context, user_id: str) -> tuple[UUID, list[MfaEvent], TotpFactor | None]:
        stream_id = mfa_stream(user_id)
        history = await context.load(stream_id, MfaEvent)
        return stream_id, history, factors.project_factor(None, cast(list[AnyMfaEvent], history))
