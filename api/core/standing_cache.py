"""What this API process knows of callers' standing, kept until the read models it came from change.

Every request is checked against the read models (api/core/principals.py), the same way on every route. Those
answers change rarely (a revocation, a removal, a new role, an offboarding, a session ended, MFA required), so
each process keeps them, keyed by what was asked, and forgets a workspace's the moment a projector announces
that it changed that workspace's identity, sessions, settings or credentials rows (`standing_channel`: the
announcement commits with the rows). An entry also expires after MAX_AGE_S, a backstop for a lost connection;
while this process is not listening (starting, reconnecting), nothing is served from the cache.

A read that began before an announcement may finish after it, with rows from before the change: such a read is
answered but never kept (the generation counter moves with every announcement).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, TypeVar

from projections.checkpoints import standing_channel

MAX_AGE_S: Final = 5.0
MAX_ENTRIES: Final = 100_000
"""Beyond this many cached answers the cache starts over (a token flood cannot grow it without bound)."""
T = TypeVar("T")


class StandingCache:
    """Listens as a companion of the process's PositionWaiter (projections/position_waiter.py): on its connection, a
    projector's announcement is heard before the checkpoint advance that answers a read-your-writes wait, so a
    command's 2xx leaves only once this process has forgotten what the command changed."""

    def __init__(self, schema: str, *, max_age_s: float = MAX_AGE_S, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.channel = standing_channel(schema)
        self._max_age_s = max_age_s
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._keys_of: dict[str, set[Hashable]] = {}
        self._generation = 0
        self._listening = False

    async def get(self, key: Hashable, read: Callable[[], Awaitable[T]], workspace_of: Callable[[T], str | None]
                  ) -> T:
        """The cached answer to `key`, or `read()`'s, kept under the workspace it is about (None: not kept)."""
        now = self._clock()
        if self._listening and (found := self._entries.get(key)) is not None and now - found[0] < self._max_age_s:
            return found[1]  # type: ignore[no-any-return]
        generation = self._generation
        value = await read()
        workspace = workspace_of(value)
        if self._listening and generation == self._generation and workspace is not None:
            if len(self._entries) >= MAX_ENTRIES:
                self.forget_all()
            self._entries[key] = (now, value)
            self._keys_of.setdefault(workspace, set()).add(key)
        return value

    def notified(self, payload: str) -> None:
        """A projector changed these workspaces' standing rows (`*`: any workspace's)."""
        self._generation += 1
        if payload == "*":
            self.forget_all()
            return
        for workspace in payload.split(","):
            for key in self._keys_of.pop(workspace, ()):
                self._entries.pop(key, None)

    def forget_all(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._keys_of.clear()

    def listening(self) -> None:
        self.forget_all()  # announcements may have been missed while not listening
        self._listening = True

    def lost(self) -> None:
        self._listening = False
        self.forget_all()
