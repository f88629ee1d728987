"""The pattern-detection worker for end-to-end tests: in an event loop of its own, as `causeloop up` runs it beside
the relay and projectors. Not part of the shared `Workers`: most tests assert on issues that the detector would
otherwise change concurrently (each issue it assigns gets a pattern link event)."""

from __future__ import annotations

from adapters.settings import Settings
from tests.worker_thread import WorkerThread
from workers.pattern_detector import run_pattern_detector


class DetectorThread(WorkerThread):
    def __init__(self, settings: Settings) -> None:
        super().__init__("e2e-detector", lambda stopping: run_pattern_detector(settings, stopping))

