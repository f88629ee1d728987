"""The prediction worker for end-to-end tests, in an event loop of its own, on a clock the test moves."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from adapters.settings import Settings
from workers.prediction_worker import run_prediction_worker


class TestClock:
    """`now()` is what the test says: it starts at the real time and only moves when the test advances it."""

    __test__ = False

    def __init__(self) -> None:
        self._now = datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


class PredictorThread:
    def __init__(self, settings: Settings, clock: TestClock | None, tick_s: float = 0.2) -> None:
        """`clock` None: the real one."""
        self._settings = settings
        self.clock = clock
        self._tick_s = tick_s
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="e2e-predictor", daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        if self.clock is None:
            await run_prediction_worker(self._settings, self._stopping, tick_s=self._tick_s)
        else:
            await run_prediction_worker(self._settings, self._stopping, clock=self.clock.now, tick_s=self._tick_s)

    def __enter__(self) -> PredictorThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(30)
