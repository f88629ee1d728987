"""MFA commands: enrol a TOTP secret (stored encrypted), activate it, remove it. One stream per user."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast
from uuid import UUID

import msgspec

from adapters import totp
from adapters.event_store import EventStore
from adapters.ids import keyed_uuid
from adapters.secret_box import SecretBox
from commands.caller import Caller
from commands.group_commit import GroupCommitter
from domain.ids import UserId
from domain.mfa import factor as factors
from domain.mfa.events import AnyMfaEvent, MfaEvent
from domain.mfa.factor import TotpFactor

BOX_PURPOSE = "mfa-totp"


def utc_now() -> datetime:
    return datetime.now(UTC)


def mfa_stream(user_id: str) -> UUID:
    return keyed_uuid("mfa", user_id)


class Enrolment(msgspec.Struct, frozen=True, kw_only=True):
    secret: str
    position: int


class MfaCommands:
    """`box` is a factory: the master key is only needed (and only required in production) when MFA is used."""

    def __init__(self, store: EventStore, committer: GroupCommitter, box: Callable[[], SecretBox],
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._committer = committer
        self._box = box
        self._clock = clock

    async def factor(self, user_id: str) -> TotpFactor | None:
        stored = await asyncio.to_thread(self._store.load, mfa_stream(user_id))
        return factors.project_factor(None, cast(list[AnyMfaEvent], [e for e in stored if isinstance(e, MfaEvent)]))

    def secret_of(self, factor: TotpFactor) -> str:
        return self._box().open(factor.secret_ciphertext, factor.user_id)

    async def enrol(self, user_id: UserId, caller: Caller) -> Enrolment:
        secret = totp.new_secret()
        event = factors.enrol_totp(await self.factor(user_id), stream_id=mfa_stream(user_id), user_id=user_id,
                                   secret_ciphertext=self._box().seal(secret, user_id), meta=caller.meta(self._clock()))
        return Enrolment(secret=secret, position=await self._append([event]))

    async def activate(self, factor: TotpFactor | None, caller: Caller) -> int:
        return await self._append(factors.activate_totp(factor, caller.meta(self._clock())))

    async def remove(self, factor: TotpFactor | None, caller: Caller) -> int:
        return await self._append([factors.remove_totp(factor, caller.meta(self._clock()))])

    async def _append(self, events: list[MfaEvent]) -> int:
        if not events:
            return 0
        positions = await asyncio.wrap_future(self._committer.submit(events))
        return max(positions, default=0)
