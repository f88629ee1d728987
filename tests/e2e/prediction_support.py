"""The prediction worker for end-to-end tests, in an event loop of its own, on a clock the test moves."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from adapters.settings import Settings
from tests.worker_thread import WorkerThread
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


class PredictorThread(WorkerThread):
    def __init__(self, settings: Settings, clock: TestClock | None, tick_s: float = 0.2) -> None:
        """`clock` None: the real one."""
        self.clock = clock

        async def run(stopping: asyncio.Event) -> None:
            if clock is None:
                await run_prediction_worker(settings, stopping, tick_s=tick_s)
            else:
                await run_prediction_worker(settings, stopping, clock=clock.now, tick_s=tick_s)

        super().__init__("e2e-predictor", run)

