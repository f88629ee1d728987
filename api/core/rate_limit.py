"""Per-client rate limit: a fixed 60 s window counted in Postgres, so every API process shares it.

The client is `api.core.client_ip.client_ip` (the peer, or behind a trusted proxy the forwarded address). Every hit
gets a slot number in its client's window from one counter row: an autocommit upsert on the infra pool
(`app.state.infra_pool`) adds a lease's size and returns the new total, so the slots of concurrent leases, from
any process, never overlap, and a hit is refused exactly when its slot is above the limit. A process fetches
one lease at a time per client: the requests that arrive meanwhile wait for it, and the next lease is sized to
all of them (not one round trip each, and no slot lost between them). While the limit is far it also leases
ahead (a sixteenth of what remains, at most 64), so a busy client costs one round trip per many requests; the
first lease of a window and every lease within 16 hits of the limit carry only the waiting requests, so near
the limit every hit is counted exactly. The one inexactness left is a lease ahead that its process never hands
out because the client stops reaching that process in this window: it counts as used. Once a client is over
the limit, this process refuses it until the window ends without asking Postgres.

Routed requests are counted by `RateLimitMiddleware` before anything else runs; requests that fail routing
(404/405) never reach route middleware, so the `after_exception` hook counts those and the error handler turns
them into 429s. A refusal is the `RateLimited` exception: api/core/errors.py writes every error, this one too.
A `before_send` hook stamps the X-RateLimit-* headers on every response.
"""

from __future__ import annotations

import asyncio
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
from api.core.client_ip import client_ip

log = logging.getLogger("causeloop.api.core.rate_limit")

INFRA_POOL = "infra_pool"
WINDOW_SECONDS = 60
_STATE_KEY = "causeloop.rate_limit"
_OUTAGE_BACKOFF_S = 5.0
_POOL_TIMEOUT_S = 1.0
_MAX_LEASE = 64
_LEASE_FRACTION = 16
_MAX_LEASED_CLIENTS = 100_000
"""Beyond this many clients in one window, new ones are counted hit by hit (memory stays bounded)."""

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
    """The client is over its limit: api/core/errors.py answers 429 `rate_limited` in the error envelope."""

    def __init__(self, decision: Decision) -> None:
        super().__init__("Too many requests")
        self.decision = decision


def infra_pool(scope: Scope) -> AsyncConnectionPool[AsyncConn] | None:
    pool: AsyncConnectionPool[AsyncConn] | None = scope["litestar_app"].state.get(INFRA_POOL)
    return pool


class Share:
    """This process's part of one client's window: the slots it leased and has not handed out yet
    (`next_slot`..`last_slot`; `last_slot` was the window's shared total when they were leased, 0 before the
    first lease), how many of its requests wait for a slot, and the lease being fetched for them."""

    __slots__ = ("fetch", "last_slot", "next_slot", "waiting")

    def __init__(self) -> None:
        self.next_slot = 1
        self.last_slot = 0
        self.waiting = 0
        self.fetch: asyncio.Future[bool] | None = None


class RateLimiter:
    """Counts each request once, records the decision in the scope, and fails open when Postgres is away."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.clock = clock
        self._purged_window = -1
        self._skip_db_until = 0.0
        self._warned_no_pool = False
        self._window = -1
        self._shares: dict[str, Share] = {}

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

    def _share(self, key: str, window: int) -> Share | None:
        if window != self._window:
            self._window, self._shares = window, {}
        share = self._shares.get(key)
        if share is None and len(self._shares) < _MAX_LEASED_CLIENTS:
            share = self._shares[key] = Share()
        return share

    async def _slot(self, scope: Scope, key: str, window: int, now: float) -> int | None:
        """This hit's number in the client's window (None: not counted, the store is away). From this process's
        lease when it has a slot left; otherwise from the lease in flight, which every waiting request shares."""
        share = self._share(key, window)
        if share is None:  # more clients this window than we keep: this one is counted hit by hit
            return await self._count(scope, key, window, now, 1)
        share.waiting += 1
        try:
            while True:
                if share.next_slot <= share.last_slot:
                    share.next_slot += 1
                    return share.next_slot - 1
                if share.last_slot >= self.limit:
                    return share.last_slot + 1  # over the limit: the window's count only grows, no need to ask
                if share.fetch is None:
                    share.fetch = asyncio.ensure_future(self._lease(scope, share, key, window, now))
                if not await asyncio.shield(share.fetch):
                    return None
        finally:
            share.waiting -= 1

    async def _lease(self, scope: Scope, share: Share, key: str, window: int, now: float) -> bool:
        """One upsert for every request waiting now, plus a lease ahead while the limit is far: never ahead in the
        first lease (it learns the shared count) nor within 16 hits of the limit, so there each hit is exact."""
        try:
            ahead = 0
            if share.last_slot:
                ahead = min(_MAX_LEASE, max(0, self.limit - share.last_slot - share.waiting) // _LEASE_FRACTION)
            size = share.waiting + ahead
            total = await self._count(scope, key, window, now, size)
            if total is None:
                return False
            share.next_slot, share.last_slot = total - size + 1, total
            return True
        finally:
            share.fetch = None

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
