"""The per-client fixed-window limit, shared through Postgres by every app instance."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import uuid
from collections.abc import Awaitable, Callable

import httpx
import msgspec
import psycopg
import pytest
from litestar import Litestar

from adapters.settings import Settings
from api.core.rate_limit import WINDOW_SECONDS
from tests.api.conftest import build_app, token_for
from tests.peer import served

pytestmark = pytest.mark.postgres

LIMIT = 3
WINDOW_START = 1_800_000_000
NOW = WINDOW_START + 15.0
PROXIES = "10.0.0.0/8, 192.0.2.1"


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


def fresh_address() -> str:
    """A client address of its own, so tests never share a counter."""
    return str(ipaddress.IPv6Address(f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"))


@pytest.fixture
def peer() -> str:
    return fresh_address()


@pytest.fixture
def app(limited: Settings, clock: FakeClock) -> Litestar:
    return limited_app(limited, clock)


def assert_rate_limited_envelope(response: httpx.Response) -> None:
    """The 429 is the error envelope like every other error: code, message, trace_id (= X-Request-Id), details."""
    assert response.json() == {"error": {
        "code": "rate_limited", "message": "Too many requests", "trace_id": response.headers["x-request-id"],
        "details": {"limit": LIMIT, "retry_after": int(response.headers["retry-after"])}}}


def limited_app(settings: Settings, clock: FakeClock) -> Litestar:
    return build_app(settings, clock=clock)


def hits(settings: Settings, key: str) -> int | None:
    """The window's shared count of `key` in Postgres."""
    with psycopg.connect(settings.database_url, autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        row = conn.execute("SELECT hits FROM rate_limit_windows WHERE client_key = %s AND window_start = %s",
                           (key, WINDOW_START)).fetchone()
    return None if row is None else int(row[0])


async def test_every_success_carries_the_limit_and_what_remains(app: Litestar, peer: str) -> None:
    async with served(app, peer) as client:
        first = await client.get("/health")
        second = await client.get("/health")

    assert first.status_code == second.status_code == 200
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == (str(LIMIT), "2")
    assert second.headers["x-ratelimit-remaining"] == "1"


async def test_errors_carry_the_headers_too(app: Litestar, peer: str) -> None:
    async with served(app, peer) as client:
        unauthorized = await client.get("/v1/me")
        missing = await client.get("/v1/nowhere")

    assert unauthorized.status_code == 401
    assert missing.status_code == 404
    assert unauthorized.headers["x-ratelimit-remaining"] == "2"
    assert missing.headers["x-ratelimit-remaining"] == "1"


async def test_over_the_limit_is_the_documented_429(app: Litestar, peer: str) -> None:
    async with served(app, peer) as client:
        for _ in range(LIMIT):
            assert (await client.get("/health")).status_code == 200

        response = await client.get("/health")

    assert response.status_code == 429
    assert_rate_limited_envelope(response)
    assert response.headers["retry-after"] == str(WINDOW_START + WINDOW_SECONDS - int(NOW))
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["x-ratelimit-limit"] == str(LIMIT)


async def test_unrouted_requests_count_and_are_refused_too(app: Litestar, peer: str) -> None:
    async with served(app, peer) as client:
        for _ in range(LIMIT):
            assert (await client.get("/v1/nowhere")).status_code == 404

        response = await client.delete("/health")

    assert response.status_code == 429
    assert_rate_limited_envelope(response)


async def test_the_handler_does_not_run_when_refused(app: Litestar, limited: Settings, peer: str) -> None:
    auth = {"Authorization": f"Bearer {token_for(limited)}"}
    async with served(app, peer) as client:
        for _ in range(LIMIT):
            await client.post("/v1/things", json={"title": "a"}, headers=auth)

        response = await client.post("/v1/things", json={"title": "a"}, headers=auth)

    assert response.status_code == 429
    assert app.state.calls.by_path["/v1/things"] == LIMIT


async def test_the_next_window_starts_afresh(app: Litestar, clock: FakeClock, peer: str) -> None:
    async with served(app, peer) as client:
        for _ in range(LIMIT + 1):
            await client.get("/health")
        clock.now += WINDOW_SECONDS

        response = await client.get("/health")

    assert response.status_code == 200
    assert response.headers["x-ratelimit-remaining"] == str(LIMIT - 1)


async def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(app: Litestar, limited: Settings,
                                                                     peer: str) -> None:
    """Without TRUSTED_PROXIES anyone could write X-Forwarded-For: rotating it must not escape the limit."""
    async with served(app, peer) as client:
        answers = [await client.get("/health", headers={"X-Forwarded-For": fresh_address()})
                   for _ in range(LIMIT + 2)]

    assert [r.status_code for r in answers] == [200] * LIMIT + [429] * 2
    assert hits(limited, peer) == LIMIT  # counted under the peer; the forged addresses have no counter


async def test_behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_key(
        limited: Settings, clock: FakeClock) -> None:
    proxied = msgspec.structs.replace(limited, trusted_proxies=PROXIES)
    client_address = fresh_address()

    def chain(forged: str) -> dict[str, str]:
        # what the client wrote, then what our two proxies appended: the client's address, the first proxy's
        return {"X-Forwarded-For": f"{forged}, {client_address}, 10.1.2.3"}

    async with served(limited_app(proxied, clock), peer="10.9.8.7") as client:
        answers = [await client.get("/health", headers=chain(fresh_address())) for _ in range(LIMIT + 1)]

    assert [r.status_code for r in answers] == [200] * LIMIT + [429]
    assert hits(limited, client_address) == LIMIT


async def test_two_app_instances_share_the_counter(limited: Settings, clock: FakeClock, peer: str) -> None:
    async with served(limited_app(limited, clock), peer) as one, served(limited_app(limited, clock), peer) as other:
        await one.get("/health")
        await other.get("/health")
        last_allowed = await one.get("/health")
        refused = await other.get("/health")

    assert last_allowed.status_code == 200
    assert last_allowed.headers["x-ratelimit-remaining"] == "0"
    assert refused.status_code == 429


async def test_old_windows_are_purged(limited: Settings, clock: FakeClock, peer: str) -> None:
    with psycopg.connect(limited.database_url, autocommit=True,
                         options=f"-c search_path={limited.database_schema}") as conn:
        conn.execute("INSERT INTO rate_limit_windows VALUES ('stale', %s, 5), ('previous', %s, 5)",
                     (WINDOW_START - 2 * WINDOW_SECONDS, WINDOW_START - WINDOW_SECONDS))

        async with served(limited_app(limited, clock), peer) as client:
            await client.get("/health")

        left = {row[0] for row in conn.execute(
            "SELECT client_key FROM rate_limit_windows WHERE client_key IN ('stale', 'previous')")}

    assert left == {"previous"}


async def test_an_unreachable_store_fails_open(limited: Settings, clock: FakeClock, peer: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    unreachable = msgspec.structs.replace(limited, database_url="postgresql://postgres@127.0.0.1:1/test")

    with caplog.at_level(logging.WARNING, logger="causeloop.api.core.rate_limit"):
        async with served(limited_app(unreachable, clock), peer) as client:
            responses = [await client.get("/health") for _ in range(LIMIT + 2)]

    assert [r.status_code for r in responses] == [200] * (LIMIT + 2)
    assert responses[-1].headers["x-ratelimit-remaining"] == str(LIMIT)
    assert any("rate limit store unavailable" in r.getMessage() for r in caplog.records)


async def test_a_busy_client_is_counted_in_leases_with_remaining_still_counting_down(
        settings: Settings, clock: FakeClock, peer: str) -> None:
    generous = msgspec.structs.replace(settings, rate_limit_per_minute=1000)
    async with served(limited_app(generous, clock), peer) as client:
        remaining = [int((await client.get("/health")).headers["x-ratelimit-remaining"]) for _ in range(20)]

    assert remaining == list(range(999, 979, -1))
    counted = hits(settings, peer)
    assert counted is not None and counted > 20  # leased ahead: fewer round trips than requests


async def test_a_client_over_the_limit_is_refused_without_asking_postgres_again(
        app: Litestar, limited: Settings, peer: str) -> None:
    async with served(app, peer) as client:
        for _ in range(LIMIT + 1):
            await client.get("/health")
        with psycopg.connect(limited.database_url, autocommit=True,
                             options=f"-c search_path={limited.database_schema}") as conn:
            conn.execute("DELETE FROM rate_limit_windows WHERE client_key = %s", (peer,))

        again = await client.get("/health")

    assert again.status_code == 429


async def concurrently(count: int, width: int, request: Callable[[int], Awaitable[httpx.Response]]) -> list[int]:
    """Sends `count` requests, `width` in flight at a time; their status codes."""
    gate = asyncio.Semaphore(width)

    async def one(n: int) -> int:
        async with gate:
            return (await request(n)).status_code

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def test_concurrent_requests_over_the_limit_get_exactly_the_limit(settings: Settings, clock: FakeClock,
                                                                        peer: str) -> None:
    limit, sent = 600, 700
    app = limited_app(msgspec.structs.replace(settings, rate_limit_per_minute=limit), clock)
    async with served(app, peer) as client:
        statuses = await concurrently(sent, 16, lambda _: client.get("/health"))

    assert (statuses.count(200), statuses.count(429)) == (limit, sent - limit)


async def test_concurrent_requests_across_two_app_instances_get_exactly_the_limit(
        settings: Settings, clock: FakeClock, peer: str) -> None:
    limit, sent = 600, 700
    generous = msgspec.structs.replace(settings, rate_limit_per_minute=limit)
    async with served(limited_app(generous, clock), peer) as one, \
            served(limited_app(generous, clock), peer) as other:
        statuses = await concurrently(sent, 16, lambda n: (one, other)[n % 2].get("/health"))

    assert (statuses.count(200), statuses.count(429)) == (limit, sent - limit)
