"""Waiting for the asynchronous workers (detector, prediction worker, recommender) from a test: their answers have no
position a client could wait for, so tests poll the API, bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
DEADLINE_S = 60.0
"""A bound on waiting for a worker, not a speed check: generous for loaded machines."""


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str = "the workers' answer") -> T:
    """The first answer of `probe` that is not None; fails the test after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        found = await probe()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
