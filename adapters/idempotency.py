"""Where Idempotency-Keys live (table `idempotency_keys`): claims, the steps they committed, the final responses.

A request that carries a key claims it (`claim_id`, a fencing token). Each command the request runs is a step; a
step's result is written by the event store in the SAME transaction as the step's events (`StepRecord`,
adapters/event_store.py), and only while the request still holds the claim. So after a crash at any point a
retry either finds the final response (`done`), or the steps that committed — it takes the claim over and
replays them instead of running them again — or nothing committed, and it runs afresh. A predecessor that is
merely slow can no longer commit once its claim was taken over: its step fails with `ClaimLost`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec
from psycopg.types.json import Jsonb

if TYPE_CHECKING:  # adapters.postgres imports the event store, which records steps from here
    from psycopg_pool import AsyncConnectionPool

    from adapters.postgres import AsyncConn

KEY_TTL = timedelta(hours=24)
ABANDONED_AFTER = timedelta(seconds=10)
"""A claim with no committed step, held this long, may be taken over (fencing makes that safe at any age; this
only keeps a genuinely concurrent duplicate answering 409 while the first one runs)."""
CLAIM_LOST_SQLSTATE: Final = "CL001"
"""Raised by `record_idempotent_step` (adapters/sql/001_core.sql) when the claim is no longer held."""


class ClaimLost(Exception):
    """Another request with the same Idempotency-Key took the claim over: this one's step was not committed."""


class KeyScope(msgspec.Struct, frozen=True):
    workspace_id: str
    principal: str
    key: str
    path: str

    def params(self, **extra: object) -> dict[str, object]:
        return {"ws": self.workspace_id, "sub": self.principal, "key": self.key, "path": self.path,
                "ttl": KEY_TTL, "abandoned": ABANDONED_AFTER, **extra}


class StoredResponse(msgspec.Struct, frozen=True):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class StepRecord(msgspec.Struct, frozen=True):
    """One step's result, to be committed with its events; the event store adds `position` (its last event's)."""

    scope: KeyScope
    claim_id: str
    step: int
    result: bytes

    def params(self, position: int) -> tuple[object, ...]:
        return (self.scope.workspace_id, self.scope.principal, self.scope.key, self.scope.path, self.claim_id,
                self.step, self.result.decode(), position)


RECORD_STEP: Final = ("SELECT {schema}.record_idempotent_step(%s::text, %s::text, %s::text, %s::text, %s::text,"
                      " %s::int, %s::jsonb || jsonb_build_object('position', %s::bigint))")


class Claim:
    """A request's hold on its key, handed to the write side (commands.caller.Caller): each command it runs takes
    the next step number, and finds there the result a crashed predecessor committed, if any."""

    def __init__(self, scope: KeyScope, claim_id: str, committed: dict[str, Any]) -> None:
        self.scope = scope
        self.claim_id = claim_id
        self.committed = committed
        self._next = 0

    def next_step(self) -> tuple[int, Any | None]:
        step, self._next = self._next, self._next + 1
        return step, self.committed.get(str(step))

    def record(self, step: int, result: bytes) -> StepRecord:
        return StepRecord(self.scope, self.claim_id, step, result)


Refusal = Literal["reused", "in_progress"]

_INSERT = """
INSERT INTO idempotency_keys (workspace_id, principal, key, path, body_hash, state, claim_id, created_at, claimed_at)
VALUES (%(ws)s, %(sub)s, %(key)s, %(path)s, %(hash)s, 'in_flight', %(claim)s, now(), now())
ON CONFLICT (workspace_id, principal, key, path) DO NOTHING
RETURNING claim_id
"""
_EXISTING = """
SELECT body_hash, state, steps, status_code, headers, body, claim_id,
       created_at < now() - %(ttl)s AS expired, claimed_at < now() - %(abandoned)s AS abandoned
  FROM idempotency_keys
 WHERE workspace_id = %(ws)s AND principal = %(sub)s AND key = %(key)s AND path = %(path)s
   FOR UPDATE
"""
_RESTART = """
UPDATE idempotency_keys SET body_hash = %(hash)s, state = 'in_flight', claim_id = %(claim)s, steps = '{}',
       status_code = NULL, headers = NULL, body = NULL, created_at = now(), claimed_at = now()
 WHERE workspace_id = %(ws)s AND principal = %(sub)s AND key = %(key)s AND path = %(path)s
"""
_TAKE_OVER = """
UPDATE idempotency_keys SET claim_id = %(claim)s, claimed_at = now()
 WHERE workspace_id = %(ws)s AND principal = %(sub)s AND key = %(key)s AND path = %(path)s
"""
_COMPLETE = """
UPDATE idempotency_keys SET state = 'done', status_code = %(status)s, headers = %(headers)s, body = %(body)s
 WHERE workspace_id = %(ws)s AND principal = %(sub)s AND key = %(key)s AND path = %(path)s
   AND claim_id = %(claim)s
"""
_FORGET = """
DELETE FROM idempotency_keys
 WHERE workspace_id = %(ws)s AND principal = %(sub)s AND key = %(key)s AND path = %(path)s
   AND claim_id = %(claim)s AND steps = '{}'
"""
_LET_GO = """
UPDATE idempotency_keys SET claim_id = NULL
 WHERE workspace_id = %(ws)s AND principal = %(sub)s AND key = %(key)s AND path = %(path)s AND claim_id = %(claim)s
"""
_PURGE = "DELETE FROM idempotency_keys WHERE created_at < now() - %(ttl)s"


async def claim(pool: AsyncConnectionPool[AsyncConn], scope: KeyScope, digest: str
                ) -> Claim | StoredResponse | Refusal:
    """This request's claim (with the steps a predecessor committed), the stored response to replay, or why not.

    One transaction with the row locked, so two retries cannot both take a claim over."""
    claim_id = uuid.uuid4().hex
    params = scope.params(hash=digest, claim=claim_id)
    async with pool.connection() as conn, conn.transaction():
        if await (await conn.execute(_INSERT, params)).fetchone():
            return Claim(scope, claim_id, {})
        row = await (await conn.execute(_EXISTING, params)).fetchone()
        if row is None:  # purged between our two statements: ours now
            await conn.execute(_INSERT, params)
            return Claim(scope, claim_id, {})
        if row["expired"]:
            await conn.execute(_RESTART, params)
            return Claim(scope, claim_id, {})
        if row["body_hash"] != digest:
            return "reused"
        if row["state"] == "done":
            return msgspec.convert({"status": row["status_code"], "headers": row["headers"], "body": row["body"]},
                                   StoredResponse)
        steps: dict[str, Any] = dict(row["steps"] or {})  # type: ignore[call-overload]
        if steps or row["claim_id"] is None or row["abandoned"]:
            await conn.execute(_TAKE_OVER, params)
            return Claim(scope, claim_id, steps)
        return "in_progress"


async def complete(pool: AsyncConnectionPool[AsyncConn], claimed: Claim, response: StoredResponse) -> None:
    async with pool.connection() as conn:
        await conn.execute(_COMPLETE, claimed.scope.params(claim=claimed.claim_id, status=response.status,
                                                           headers=Jsonb(response.headers), body=response.body))


async def release(pool: AsyncConnectionPool[AsyncConn], claimed: Claim) -> None:
    """The request ended without a 2xx: forget the key if nothing committed, else leave the committed steps for a
    retry to replay and let it take over at once."""
    params = claimed.scope.params(claim=claimed.claim_id)
    async with pool.connection() as conn:
        if (await conn.execute(_FORGET, params)).rowcount == 0:
            await conn.execute(_LET_GO, params)


async def purge_expired(pool: AsyncConnectionPool[AsyncConn]) -> int:
    """Delete rows past their TTL (they are already ignored); returns how many went."""
    async with pool.connection() as conn:
        return (await conn.execute(_PURGE, {"ttl": KEY_TTL})).rowcount
