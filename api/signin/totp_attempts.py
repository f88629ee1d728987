"""Checking a TOTP code: at most MAX_FAILURES wrong codes per user per window, and each code is good once.

The counters are operational (table `mfa_attempts`, written by the API like the rate-limit windows),
shared by every API replica; the failure count is committed before the error is raised.
"""

from __future__ import annotations

import math
import time
from typing import cast

from psycopg_pool import AsyncConnectionPool

from adapters import totp
from adapters.postgres import AsyncConn
from api.core.errors import ApiError

MAX_FAILURES = 5
WINDOW_S = 300

_LOCK = ("INSERT INTO mfa_attempts (user_id, window_start, failures) VALUES (%s, %s, 0)"
         " ON CONFLICT (user_id) DO UPDATE SET user_id = excluded.user_id"
         " RETURNING window_start, failures, last_step")
_SAVE = "UPDATE mfa_attempts SET window_start = %s, failures = %s, last_step = %s WHERE user_id = %s"


def invalid_code(message: str = "The code is not valid; use the current code from your authenticator app") -> ApiError:
    return ApiError(422, "invalid_mfa_code", message)


async def check_totp(pool: AsyncConnectionPool[AsyncConn], user_id: str, secret: str, code: str,
                     now: float | None = None) -> None:
    """Returns when `code` is a current, unused code for `secret`; else 422 `invalid_mfa_code` or 429."""
    at = time.time() if now is None else now
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(_LOCK, (user_id, int(at)))  # the upsert locks the user's row
        row = await cursor.fetchone()
        assert row is not None
        window_start, failures, last_step = (cast(int, row[name]) for name in ("window_start", "failures", "last_step"))
        if at - window_start >= WINDOW_S:
            window_start, failures = int(at), 0
        if failures >= MAX_FAILURES:
            retry_after = max(1, math.ceil(window_start + WINDOW_S - at))
            raise ApiError(429, "rate_limited", "Too many wrong codes; wait before trying again",
                           {"retry_after": retry_after}, headers={"Retry-After": str(retry_after)})
        step = totp.matching_step(secret, code, at)
        accepted = step is not None and step > last_step
        await conn.execute(_SAVE, (window_start, 0 if accepted else failures + 1,
                                   step if accepted and step is not None else last_step, user_id))
    if not accepted:
        raise invalid_code()
