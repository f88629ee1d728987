"""The per-IP fixed-window limit, shared through Postgres by every app instance."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import msgspec
import psycopg
import pytest
from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from api.rate_limit import WINDOW_SECONDS
from tests.api.conftest import build_app

pytestmark = pytest.mark.postgres

LIMIT = 3
WINDOW_START = 1_800_000_000
NOW = WINDOW_START + 15.0


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, rate_limit_per_minute=LIMIT)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ip() -> dict[str, str]:
    """A client address of this test's own, so tests never share a counter."""
    return {"X-Forwarded-For": f"203.0.113.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:8]}, 10.0.0.1"}


def assert_rate_limited_envelope(response: Response) -> None:
    """The 429 is the error envelope like every other error: code, message, trace_id (= X-Request-Id), details."""
    assert response.json() == {"error": {
        "code": "rate_limited", "message": "Too many requests", "trace_id": response.headers["x-request-id"],
        "details": {"limit": LIMIT, "retry_after": int(response.headers["retry-after"])}}}


def limited_app(settings: Settings, clock: FakeClock) -> Litestar:
    return build_app(settings, clock=clock)


@pytest.fixture
async def client(limited: Settings, clock: FakeClock) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=limited_app(limited, clock)) as client:
        yield client


async def test_every_success_carries_the_limit_and_what_remains(client: AsyncTestClient[Litestar],
                                                                 ip: dict[str, str]) -> None:
    first = await client.get("/health", headers=ip)
    second = await client.get("/health", headers=ip)

    assert first.status_code == second.status_code == 200
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == (str(LIMIT), "2")
    assert second.headers["x-ratelimit-remaining"] == "1"


async def test_errors_carry_the_headers_too(client: AsyncTestClient[Litestar], ip: dict[str, str]) -> None:
    unauthorized = await client.get("/v1/me", headers=ip)
    missing = await client.get("/v1/nowhere", headers=ip)

    assert unauthorized.status_code == 401
    assert missing.status_code == 404
    assert unauthorized.headers["x-ratelimit-remaining"] == "2"
    assert missing.headers["x-ratelimit-remaining"] == "1"


async def test_over_the_limit_is_the_documented_429(client: AsyncTestClient[Litestar], ip: dict[str, str]) -> None:
    for _ in range(LIMIT):
        assert (await client.get("/health", headers=ip)).status_code == 200

    response = await client.get("/health", headers=ip)

    assert response.status_code == 429
    assert_rate_limited_envelope(response)
    assert response.headers["retry-after"] == str(WINDOW_START + WINDOW_SECONDS - int(NOW))
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["x-ratelimit-limit"] == str(LIMIT)


async def test_unrouted_requests_count_and_are_refused_too(client: AsyncTestClient[Litestar],
                                                           ip: dict[str, str]) -> None:
    for _ in range(LIMIT):
        assert (await client.get("/v1/nowhere", headers=ip)).status_code == 404

    response = await client.delete("/health", headers=ip)

    assert response.status_code == 429
    assert_rate_limited_envelope(response)


async def test_the_handler_does_not_run_when_refused(client: AsyncTestClient[Litestar], ip: dict[str, str],
                                                     limited: Settings) -> None:
    from tests.api.conftest import token_for

    auth = {"Authorization": f"Bearer {token_for(limited)}", **ip}
    for _ in range(LIMIT):
        await client.post("/v1/things", json={"title": "a"}, headers=auth)

    response = await client.post("/v1/things", json={"title": "a"}, headers=auth)

    assert response.status_code == 429
    assert client.app.state.calls.by_path["/v1/things"] == LIMIT


async def test_the_next_window_starts_afresh(client: AsyncTestClient[Litestar], clock: FakeClock,
                                             ip: dict[str, str]) -> None:
    for _ in range(LIMIT + 1):
        await client.get("/health", headers=ip)
    clock.now += WINDOW_SECONDS

    response = await client.get("/health", headers=ip)

    assert response.status_code == 200
    assert response.headers["x-ratelimit-remaining"] == str(LIMIT - 1)


async def test_the_first_forwarded_address_is_the_key(client: AsyncTestClient[Litestar], ip: dict[str, str]) -> None:
    first_hop = ip["X-Forwarded-For"].split(",")[0]
    await client.get("/health", headers=ip)

    response = await client.get("/health", headers={"X-Forwarded-For": f"{first_hop}, 192.0.2.99"})

    assert response.headers["x-ratelimit-remaining"] == str(LIMIT - 2)


async def test_two_app_instances_share_the_counter(limited: Settings, clock: FakeClock, ip: dict[str, str]) -> None:
    async with AsyncTestClient(app=limited_app(limited, clock)) as one, \
            AsyncTestClient(app=limited_app(limited, clock)) as other:
        await one.get("/health", headers=ip)
        await other.get("/health", headers=ip)
        last_allowed = await one.get("/health", headers=ip)
        refused = await other.get("/health", headers=ip)

    assert last_allowed.status_code == 200
    assert last_allowed.headers["x-ratelimit-remaining"] == "0"
    assert refused.status_code == 429


async def test_old_windows_are_purged(limited: Settings, clock: FakeClock, ip: dict[str, str]) -> None:
    with psycopg.connect(limited.database_url, autocommit=True,
                         options=f"-c search_path={limited.database_schema}") as conn:
        conn.execute("INSERT INTO rate_limit_windows VALUES ('stale', %s, 5), ('previous', %s, 5)",
                     (WINDOW_START - 2 * WINDOW_SECONDS, WINDOW_START - WINDOW_SECONDS))

        async with AsyncTestClient(app=limited_app(limited, clock)) as client:
            await client.get("/health", headers=ip)

        left = {row[0] for row in conn.execute(
            "SELECT client_key FROM rate_limit_windows WHERE client_key IN ('stale', 'previous')")}

    assert left == {"previous"}


async def test_an_unreachable_store_fails_open(limited: Settings, clock: FakeClock, ip: dict[str, str],
                                               caplog: pytest.LogCaptureFixture) -> None:
    unreachable = msgspec.structs.replace(limited, database_url="postgresql://postgres@127.0.0.1:1/test")

    with caplog.at_level(logging.WARNING, logger="causeloop.api.rate_limit"):
        async with AsyncTestClient(app=limited_app(unreachable, clock)) as client:
            responses = [await client.get("/health", headers=ip) for _ in range(LIMIT + 2)]

    assert [r.status_code for r in responses] == [200] * (LIMIT + 2)
    assert responses[-1].headers["x-ratelimit-remaining"] == str(LIMIT)
    assert any("rate limit store unavailable" in r.getMessage() for r in caplog.records)


async def test_a_busy_client_is_counted_in_leases_with_remaining_still_counting_down(
        settings: Settings, clock: FakeClock, ip: dict[str, str]) -> None:
    generous = msgspec.structs.replace(settings, rate_limit_per_minute=1000)
    async with AsyncTestClient(app=limited_app(generous, clock)) as client:
        remaining = [int((await client.get("/health", headers=ip)).headers["x-ratelimit-remaining"])
                     for _ in range(20)]
    with psycopg.connect(settings.database_url, autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        row = conn.execute("SELECT hits FROM rate_limit_windows WHERE client_key = %s AND window_start = %s",
                           (ip["X-Forwarded-For"].split(",")[0], WINDOW_START)).fetchone()

    assert remaining == list(range(999, 979, -1))
    assert row is not None and row[0] > 20  # leased ahead: fewer round trips than requests


async def test_a_client_over_the_limit_is_refused_without_asking_postgres_again(
        client: AsyncTestClient[Litestar], limited: Settings, ip: dict[str, str]) -> None:
    for _ in range(LIMIT + 1):
        await client.get("/health", headers=ip)
    with psycopg.connect(limited.database_url, autocommit=True,
                         options=f"-c search_path={limited.database_schema}") as conn:
        conn.execute("DELETE FROM rate_limit_windows WHERE client_key = %s", (ip["X-Forwarded-For"].split(",")[0],))

    again = await client.get("/health", headers=ip)

    assert again.status_code == 429
