"""The whole system for end-to-end tests: the real app, with the relay and projector on a thread of their own."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from adapters.event_store import EventStore
from adapters.settings import Settings
from adapters.tokens import mint_access_token
from api.app import create_app
from commands.identity import EnsureMembership, IdentityCommands, workspace_stream
from domain.events import Actor, ActorKind
from domain.identity.roles import Role, scopes_for
from domain.ids import render
from projections.position_waiter import PositionWaiter
from projections.registry import PROJECTIONS
from tests.fake_providers import Provider, serving
from tests.worker_thread import WorkerThread
from workers.projector_runner import run_projectors
from workers.relay import run_relay


class Workers(WorkerThread):
    """Relay + every registered projector in their own event loop (the test client blocks the test's loop)."""

    def __init__(self, settings: Settings) -> None:
        async def run(stopping: asyncio.Event) -> None:
            await asyncio.gather(run_relay(settings, stopping), run_projectors(settings, list(PROJECTIONS), stopping))

        super().__init__("e2e-workers", run)


@pytest.fixture(scope="session")
def workers(settings: Settings) -> Iterator[Workers]:
    with running_workers(settings) as running:
        yield running


@pytest.fixture
async def api(settings: Settings, workers: Workers) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    async with AsyncTestClient(create_app(settings, configure_logging=False)) as client:
        yield client


class Tenant:
    """A workspace of its own for each test, provisioned for real (events → `identity` projection), so tokens
    pass the per-request membership check. Its owner is `user_id`; `headers(role)` narrows the owner's token to
    that role's scopes, `member_headers(role)` signs in a separate member who holds exactly that role."""

    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.settings = settings
        self._store = store
        self.slug = f"t-{uuid.uuid4().hex[:12]}"
        self.owner_email = f"owner-{self.slug}@example.test"
        self.workspace_id = render("ws", workspace_stream(self.slug))
        self.user_id = self._join(self.owner_email, Role.OWNER)

    def headers(self, role: Role = Role.ANALYST, scopes: frozenset[str] | None = None) -> dict[str, str]:
        return self._bearer(self.user_id, role, scopes)

    def member_headers(self, role: Role, email: str | None = None) -> dict[str, str]:
        user_id = self._join(email or f"{role.value}-{uuid.uuid4().hex[:8]}@{self.slug}.example.test", role)
        return self._bearer(user_id, role, None)

    def _bearer(self, user_id: str, role: Role, scopes: frozenset[str] | None) -> dict[str, str]:
        token = mint_access_token(self.settings, subject=user_id, workspace_id=self.workspace_id,
                                  role=role.value, scopes=scopes_for(role, scopes))
        return {"Authorization": f"Bearer {token}"}

    def _join(self, email: str, role: Role) -> str:
        """The user is a member once the projection the API reads has it (polled: no waiter in tests)."""
        membership = IdentityCommands(self._store, actor=TEST_ACTOR).ensure_membership(
            EnsureMembership(email=email, workspace_slug=self.slug, role=role))
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{self.settings.database_schema}"')
            deadline = time.monotonic() + 10
            while conn.execute("SELECT 1 FROM memberships WHERE workspace_id = %s AND user_id = %s",
                               (membership.workspace_id, membership.user_id)).fetchone() is None:
                assert time.monotonic() < deadline, "the identity projection never had the membership"
                time.sleep(0.01)
        return membership.user_id


TEST_ACTOR = Actor(kind=ActorKind.SYSTEM, id="e2e-tests")


@contextlib.contextmanager
def event_store(settings: Settings) -> Iterator[EventStore]:
    store = EventStore(settings, pool_size=2)
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def running_workers(settings: Settings) -> Iterator[Workers]:
    running = Workers(settings)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def identity_store(settings: Settings) -> Iterator[EventStore]:
    with event_store(settings) as store:
        yield store


@pytest.fixture
async def audited(settings: Settings) -> AsyncIterator[PositionWaiter]:
    """Waits on the `audit` projection (a command's own read-your-writes waits on its resource's)."""
    waiter = PositionWaiter(settings)
    await waiter.start()
    yield waiter
    await waiter.stop()


@pytest.fixture
def tenant(settings: Settings, workers: Workers, identity_store: EventStore) -> Tenant:
    return Tenant(settings, identity_store)


@pytest.fixture
def other_tenant(settings: Settings, workers: Workers, identity_store: EventStore) -> Tenant:
    return Tenant(settings, identity_store)


@pytest.fixture(scope="module")
def provider_server() -> Iterator[tuple[str, Provider]]:
    """The local server that behaves like Jira, GitHub, PagerDuty and Sentry (tests/fake_providers.py), one per
    test module."""
    with serving() as running:
        yield running


@pytest.fixture
def provider(provider_server: tuple[str, Provider]) -> Iterator[tuple[str, Provider]]:
    """A clean provider state per test on the module's server (a module may define its own `provider`)."""
    base, state = provider_server
    state.__init__()  # type: ignore[misc]
    yield base, state
    state.release.set()
