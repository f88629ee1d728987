"""The recommendation worker for end-to-end tests, in an event loop of its own, with a clock the test moves."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from adapters.settings import Settings
from workers.recommender import run_recommender


class MovableClock:
    """Wall time plus an offset the test sets (the worker reads it for every proof-window check)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class RecommenderThread:
    def __init__(self, settings: Settings, clock: MovableClock) -> None:
        self._settings = settings
        self.clock = clock
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="e2e-recommender",
                                        daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        await run_recommender(self._settings, self._stopping, self.clock)

    def start(self) -> RecommenderThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(30)

    def __enter__(self) -> RecommenderThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
