"""The API server bounds the request head while it arrives: an oversized one is a 431 in the error envelope, and
the server stops reading it (the review's 32 MiB Authorization header was read whole before the 401)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar, get

from adapters.settings import Settings
from api.core.input_policy import MAX_HEADER_BYTES
from cli.run import api_server


@get("/ping", sync_to_thread=False)
def ping() -> str:
    return "pong"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def port() -> AsyncIterator[int]:
    chosen = free_port()
    server = api_server(Litestar([ping]), Settings(port=chosen, log_level="WARNING"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield chosen
    server.should_exit = True
    await serving


async def exchange(port: int, head: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def bytes_accepted(port: int, head: bytes, stream: int) -> int:
    """Send `head`, then up to `stream` more bytes in 64 KiB pieces; how many went out before the server hung up."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    sent = 0
    try:
        while sent < stream:
            writer.write(b"a" * 65_536)
            await writer.drain()
            sent += 65_536
    except ConnectionError:
        pass
    writer.close()
    return sent


def envelope(answer: bytes) -> dict[str, object]:
    body: dict[str, object] = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    return body


async def test_a_32_mib_header_is_not_read_to_its_end(port: int) -> None:
    sent = await bytes_accepted(port, b"GET /ping HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ", 32 * 1024 * 1024)

    assert sent < 8 * 1024 * 1024


async def test_a_header_growing_past_the_bound_is_answered_431(port: int) -> None:
    answer = await exchange(port, b"GET /ping HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * 65_536)

    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert envelope(answer)["code"] == "request_header_fields_too_large"


async def test_headers_over_the_bound_that_arrive_at_once_are_refused(port: int) -> None:
    headers = b"".join(b"X-Filler-%d: %s\r\n" % (n, b"v" * 1000) for n in range(MAX_HEADER_BYTES // 1000 + 2))
    answer = await exchange(port, b"GET /ping HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")

    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert set(envelope(answer)) == {"code", "message", "trace_id", "details"}


async def test_a_head_within_the_bound_is_served(port: int) -> None:
    filler = b"X-Filler: " + b"v" * (MAX_HEADER_BYTES - 200) + b"\r\n"
    answer = await exchange(port, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + filler + b"\r\n")

    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
