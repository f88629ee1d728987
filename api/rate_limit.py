"""Per-client-IP rate limit: a fixed 60 s window counted in Postgres, so every API process shares it.

A process takes the window's hits from Postgres in leases (one autocommit upsert on the infra pool,
`app.state.infra_pool`, adds the lease size and returns the window's total): the first request of a client
in a window leases one hit and so learns the shared count; later leases are a sixteenth of what remains
(at most 64), so a busy client costs one round trip per many requests, while near the limit every hit is
counted exactly. Hits are numbered by their slot in the window, so `X-RateLimit-Remaining` counts down
across processes. Hits leased but not used count as used (a process never hands them back), and once a
client is over the limit this process refuses it until the window ends without asking Postgres. Routed requests
are counted by `RateLimitMiddleware` before anything else runs; requests that fail routing (404/405)
never reach route middleware, so the `after_exception` hook counts those and the error handler turns
them into 429s. A refusal is the `RateLimited` exception: api/errors.py writes every error, this one too.
A `before_send` hook stamps the X-RateLimit-* headers on every response.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn
from api.client_ip import client_ip

log = logging.getLogger("causeloop.api.rate_limit")

INFRA_POOL = "infra_pool"
WINDOW_SECONDS = 60
_STATE_KEY = "causeloop.rate_limit"
_OUTAGE_BACKOFF_S = 5.0
_POOL_TIMEOUT_S = 1.0
_MAX_LEASE = 64
_LEASE_FRACTION = 16
_MAX_LEASED_CLIENTS = 100_000
"""Beyond this many clients in one window (spoofed X-Forwarded-For floods) new ones are counted one by one."""

_COUNT = """
INSERT INTO rate_limit_windows (client_key, window_start, hits) VALUES (%s, %s, %s)
ON CONFLICT (client_key, window_start) DO UPDATE SET hits = rate_limit_windows.hits + excluded.hits
RETURNING hits
"""
_PURGE = "DELETE FROM rate_limit_windows WHERE window_start < %s"


class Decision(msgspec.Struct, frozen=True):
    limit: int
    remaining: int
    retry_after: int
    exceeded: bool


class RateLimited(Exception):
    """The client is over its limit: api/errors.py answers 429 `rate_limited` in the error envelope."""

    def __init__(self, decision: Decision) -> None:
        super().__init__("Too many requests")
        self.decision = decision


def infra_pool(scope: Scope) -> AsyncConnectionPool[AsyncConn] | None:
    pool: AsyncConnectionPool[AsyncConn] | None = scope["litestar_app"].state.get(INFRA_POOL)
    return pool


class Lease:
    """Window slots `next_slot`..`last_slot` of one client, held by this process (`last_slot` is the shared total
    when they were leased)."""

    __slots__ = ("last_slot", "next_slot")

    def __init__(self, next_slot: int, last_slot: int) -> None:
        self.next_slot = next_slot
        self.last_slot = last_slot


class RateLimiter:
    """Counts each request once, records the decision in the scope, and fails open when Postgres is away."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.clock = clock
        self._purged_window = -1
        self._skip_db_until = 0.0
        self._warned_no_pool = False
        self._lease_window = -1
        self._leases: dict[str, Lease] = {}

    async def hit(self, scope: Scope) -> Decision:
        state = scope.setdefault("state", {})
        if isinstance(decided := state.get(_STATE_KEY), Decision):
            return decided
        now = self.clock()
        window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        slot = await self._slot(scope, client_ip(scope), window, now)
        retry_after = max(1, math.ceil(window + WINDOW_SECONDS - now))
        if slot is None:
            decision = Decision(self.limit, self.limit, retry_after, exceeded=False)
        else:
            remaining = max(0, self.limit - slot)
            decision = Decision(self.limit, remaining, retry_after, exceeded=slot > self.limit)
        state[_STATE_KEY] = decision
        return decision

    async def _slot(self, scope: Scope, key: str, window: int, now: float) -> int | None:
        """This hit's number in the client's window: from this process's lease, or from a new one."""
        if window != self._lease_window:
            self._lease_window, self._leases = window, {}
        lease = self._leases.get(key)
        if lease is not None:
            if lease.next_slot <= lease.last_slot:
                lease.next_slot += 1
                return lease.next_slot - 1
            if lease.last_slot >= self.limit:
                return lease.last_slot + 1  # over the limit: the window's count only grows, no need to ask
        size = 1 if lease is None else max(1, min(_MAX_LEASE, (self.limit - lease.last_slot) // _LEASE_FRACTION))
        total = await self._count(scope, key, window, now, size)
        if total is None:
            return None
        if window == self._lease_window and (key in self._leases or len(self._leases) < _MAX_LEASED_CLIENTS):
            self._leases[key] = Lease(next_slot=total - size + 2, last_slot=total)
        return total - size + 1

    async def _count(self, scope: Scope, key: str, window: int, now: float, size: int) -> int | None:
        pool = infra_pool(scope)
        if pool is None:
            if not self._warned_no_pool:
                self._warned_no_pool = True
                log.warning("app.state.%s is missing (lifespan not run?): requests are not rate limited", INFRA_POOL)
            return None
        if now < self._skip_db_until:
            return None
        try:
            async with pool.connection(timeout=_POOL_TIMEOUT_S) as conn:
                row = await (await conn.execute(_COUNT, (key, window, size))).fetchone()
                if window != self._purged_window:
                    self._purged_window = window
                    await conn.execute(_PURGE, (window - WINDOW_SECONDS,))
        except Exception:
            # Failing open: an outage of the counter store must not take the API down with it.
            self._skip_db_until = now + _OUTAGE_BACKOFF_S
            log.warning("rate limit store unavailable; allowing requests for %.0f s", _OUTAGE_BACKOFF_S,
                        exc_info=True)
            return None
        hits = row["hits"] if row is not None else None
        return hits if isinstance(hits, int) else None

    async def count_unrouted(self, exc: BaseException, scope: Scope) -> None:
        """`after_exception` hook: requests that failed routing are counted here; routed ones already were."""
        if scope["type"] == ScopeType.HTTP:
            await self.hit(scope)


def decision_of(scope: Scope) -> Decision | None:
    decision = scope.get("state", {}).get(_STATE_KEY)
    return decision if isinstance(decision, Decision) else None


async def stamp_rate_limit_headers(message: Message, scope: Scope) -> None:
    """`before_send` hook: X-RateLimit-Limit and -Remaining on every response that was counted."""
    if message["type"] == "http.response.start" and (decision := decision_of(scope)) is not None:
        headers = MutableScopeHeaders.from_message(message)
        headers["X-RateLimit-Limit"] = str(decision.limit)
        headers["X-RateLimit-Remaining"] = str(decision.remaining)


class RateLimitMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        decision = await self.limiter.hit(scope)
        if decision.exceeded:
            raise RateLimited(decision)
        await next_app(scope, receive, send)
