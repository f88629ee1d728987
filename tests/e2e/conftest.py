"""The whole system for end-to-end tests: the real app, with the relay and projector on a thread of their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from litestar.testing import AsyncTestClient

from adapters.ids import new_id
from adapters.settings import Settings
from adapters.tokens import mint_access_token
from api.app import create_app
from domain.identity.roles import Role, scopes_for
from projections.registry import PROJECTIONS
from workers.projector_runner import run_projector
from workers.relay import run_relay


class Workers:
    """Relay + every registered projector in their own event loop (the test client blocks the test's loop)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="e2e-workers", daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        await asyncio.gather(run_relay(self._settings, self._stopping),
                             *(run_projector(self._settings, name, self._stopping) for name in PROJECTIONS))

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(30)


@pytest.fixture(scope="session")
def workers(settings: Settings) -> Iterator[Workers]:
    running = Workers(settings)
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def api(settings: Settings, workers: Workers) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    async with AsyncTestClient(create_app(settings, configure_logging=False)) as client:
        yield client


class Tenant:
    """A workspace of its own for each test, with tokens for its members."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workspace_id = new_id("ws")
        self.user_id = new_id("usr")

    def headers(self, role: Role = Role.ANALYST, scopes: frozenset[str] | None = None) -> dict[str, str]:
        token = mint_access_token(self.settings, subject=self.user_id, workspace_id=self.workspace_id,
                                  role=role.value, scopes=scopes_for(role, scopes))
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tenant(settings: Settings) -> Tenant:
    return Tenant(settings)


@pytest.fixture
def other_tenant(settings: Settings) -> Tenant:
    return Tenant(settings)
