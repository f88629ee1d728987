"""Reaching an app from a given client address. Litestar's test client calls every peer "testclient" (not an
address) and runs one request at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar
from litestar.types import Receive, Scope, Send


class Peer:
    """`app` as an ASGI app reached from `address` (for Litestar's test client, which runs the lifespan)."""

    def __init__(self, app: Litestar, address: str) -> None:
        self.app = app
        self.address = address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["client"] = (self.address, 50000)
        await self.app(scope, receive, send)


@asynccontextmanager
async def served(app: Litestar, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    """`app` with its lifespan, reached from `peer`, serving concurrent requests concurrently."""
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
