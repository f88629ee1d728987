"""The process supervisor: one signal or one failure stops every part, and a failure is not swallowed."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from cli.run import run


async def waits_for_stop(stopping: asyncio.Event) -> None:
    await stopping.wait()


def test_sigterm_stops_every_worker_cleanly() -> None:
    stopped: list[str] = []

    async def sends_sigterm(stopping: asyncio.Event) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        await stopping.wait()
        stopped.append("sender")

    async def other(stopping: asyncio.Event) -> None:
        await stopping.wait()
        stopped.append("other")

    run(None, {"sender": sends_sigterm, "other": other})

    assert sorted(stopped) == ["other", "sender"]


def test_a_failing_worker_stops_the_others_and_its_error_is_raised() -> None:
    async def fails(stopping: asyncio.Event) -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        run(None, {"fails": fails, "waits": waits_for_stop})


def test_a_worker_that_returns_before_being_asked_to_stop_is_a_failure() -> None:
    async def returns(stopping: asyncio.Event) -> None:
        return None

    with pytest.raises(RuntimeError, match="returns stopped on its own"):
        run(None, {"returns": returns, "waits": waits_for_stop})
