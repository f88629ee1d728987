"""An async worker on a thread of its own, as `causeloop up` runs workers beside the API: the test client blocks
the test's event loop, so each worker gets its own loop, and stops when its `stopping` event is set."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Self


class WorkerThread:
    def __init__(self, name: str, run: Callable[[asyncio.Event], Awaitable[object]]) -> None:
        self._run = run
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name=name, daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        await self._run(self._stopping)

    def start(self) -> Self:
        """Start the worker and wait until its loop runs."""
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        """Ask the worker to stop and wait for it (at most 30 s)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(30)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
