"""The process supervisor: one signal or one failure stops every part, and a failure is not swallowed."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import httpx
import msgspec
import psycopg
import pytest

from adapters.settings import Settings
from cli.embedded import free_port
from cli.run import api_server, run
from tests.api.conftest import build_app


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


@pytest.mark.postgres
async def test_the_served_api_reads_no_forwarded_header_of_an_untrusted_peer(settings: Settings) -> None:
    """uvicorn by default believes X-Forwarded-For from a loopback peer; as served, only TRUSTED_PROXIES decides."""
    served = msgspec.structs.replace(settings, port=free_port(0))
    server = api_server(build_app(served), served)
    task = asyncio.create_task(server.serve())
    forged = f"2001:db8::{uuid.uuid4().hex[:4]}"
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{served.port}/health", headers={"X-Forwarded-For": forged})
    finally:
        server.should_exit = True
        await task

    assert response.status_code == 200
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}") as conn:
        keys = {row[0] for row in conn.execute("SELECT client_key FROM rate_limit_windows")}
    assert "127.0.0.1" in keys and forged not in keys
