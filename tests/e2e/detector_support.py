"""The pattern-detection worker for end-to-end tests: in an event loop of its own, as `causeloop up` runs it beside
the relay and projectors. Not part of the shared `Workers`: most tests assert on issues that the detector would
otherwise change concurrently (each issue it assigns gets a pattern link event)."""

from __future__ import annotations

import asyncio
import threading

from adapters.settings import Settings
from workers.pattern_detector import run_pattern_detector


class DetectorThread:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="e2e-detector", daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        await run_pattern_detector(self._settings, self._stopping)

    def start(self) -> DetectorThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(30)

    def __enter__(self) -> DetectorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
