"""The recommendation worker for end-to-end tests, in an event loop of its own, with a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.settings import Settings
from tests.worker_thread import WorkerThread
from workers.recommender import run_recommender


class MovableClock:
    """Wall time plus an offset the test sets (the worker reads it for every proof-window check)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class RecommenderThread(WorkerThread):
    def __init__(self, settings: Settings, clock: MovableClock) -> None:
        self.clock = clock
        super().__init__("e2e-recommender", lambda stopping: run_recommender(settings, stopping, clock))

