"""Read-your-writes: wait until a projection's checkpoint reaches a position, woken by LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from adapters.postgres import connect, listen_forever
from adapters.settings import Settings
from projections import checkpoints


class Companion(Protocol):
    """Something else this process learns from NOTIFYs, on the waiter's connection so that it hears a transaction's
    announcements before the checkpoint advance that wakes the waiters (one connection, one order)."""

    @property
    def channel(self) -> str: ...

    def notified(self, payload: str) -> None: ...

    def listening(self) -> None: ...

    def lost(self) -> None: ...


class PositionWaiter:
    """One LISTEN connection per process; callers park on futures instead of polling."""

    def __init__(self, settings: Settings, companions: Sequence[Companion] = ()) -> None:
        self._settings = settings
        self._companions = tuple(companions)
        self._known: dict[str, int] = defaultdict(int)
        self._waiters: dict[str, list[tuple[int, asyncio.Future[None]]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._read: set[str] = set()
        """Projections whose checkpoint was read since LISTEN (re)started: later advances arrive as NOTIFYs."""

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="position-waiter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self, name: str, position: int, timeout: float) -> bool:
        """True once projection `name` has committed `position` (at once if it already has)."""
        if position <= self._known[name]:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (position, future)
        self._waiters[name].append(entry)
        try:
            if not self._listening.is_set() or name not in self._read:
                # No live LISTEN, or a checkpoint that may have advanced before it began and never since: read it
                # once (after registering, so an advance in between still wakes us).
                await self._refresh(name)
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with contextlib.suppress(ValueError):
                self._waiters[name].remove(entry)

    def _advance(self, name: str, position: int) -> None:
        if position <= self._known[name]:
            return
        self._known[name] = position
        for reached, future in self._waiters[name]:
            if reached <= position and not future.done():
                future.set_result(None)

    async def _refresh(self, name: str) -> None:
        conn = await connect(self._settings, autocommit=True)
        try:
            self._advance(name, await checkpoints.position(conn, name))
            if self._listening.is_set():
                self._read.add(name)
        finally:
            await conn.close()

    async def _listen(self) -> None:
        handlers = {checkpoints.channel(self._settings.database_schema): self._notified,
                    **{companion.channel: companion.notified for companion in self._companions}}
        await listen_forever(self._settings, handlers, on_listening=self._listening_again, on_lost=self._lost)

    def _lost(self) -> None:
        self._listening.clear()
        self._read.clear()
        for companion in self._companions:
            companion.lost()

    def _notified(self, payload: str) -> None:
        name, _, position = payload.rpartition(":")
        self._advance(name, int(position))

    async def _listening_again(self) -> None:
        for companion in self._companions:
            companion.listening()
        self._listening.set()
        for name in list(self._waiters):
            await self._refresh(name)
