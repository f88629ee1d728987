"""Idempotency-Key on POST/PATCH/PUT (api.md A): per (workspace, principal, key, path), in Postgres, 24 h.

The first request claims the key (`in_flight`, with a hash of method + raw body) and runs; a 2xx answer is
stored (`done`) and replayed to later requests with `Idempotency-Replayed: true` without running the
handler; any other answer releases the key so a retry runs again. Same key with another body → 422
`idempotency_key_reused`; same key while the first still runs → 409 `idempotency_in_progress`.
It runs after AuthMiddleware and reads the Principal it set; without one (public routes) it stands aside.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from datetime import timedelta
from typing import Any, cast

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Message,
    Receive,
    Scope,
    Send,
)
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn
from adapters.tokens import Principal
from api import standing_gate
from api.errors import ApiError, validation_error
from api.rate_limit import infra_pool
from api.request_id import header_value

log = logging.getLogger("causeloop.api.idempotency")

IDEMPOTENT_METHODS = frozenset({"POST", "PATCH", "PUT"})
KEY_TTL = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=10)
"""An `in_flight` row older than this belongs to a crashed process and may be taken over."""
MAX_KEY_LENGTH = 255
REPLAYED_HEADERS = frozenset({"content-type", "location", "etag"})
_CLAIM_ATTEMPTS = 3

_CLAIM = """
INSERT INTO idempotency_keys AS k (workspace_id, principal, key, path, body_hash, state, claim_id, created_at)
VALUES (%(ws)s, %(sub)s, %(key)s, %(path)s, %(hash)s, 'in_flight', %(claim)s, now())
ON CONFLICT (workspace_id, principal, key, path) DO UPDATE
   SET body_hash = EXCLUDED.body_hash, state = 'in_flight', claim_id = EXCLUDED.claim_id,
       status_code = NULL, headers = NULL, body = NULL, created_at = now()
 WHERE k.created_at < now() - %(ttl)s
    OR (k.state = 'in_flight' AND k.created_at < now() - %(abandoned)s)
RETURNING k.claim_id
"""
_EXISTING = """
SELECT body_hash, state, status_code, headers, body FROM idempotency_keys
 WHERE workspace_id = %(ws)s AND principal = %(sub)s AND key = %(key)s AND path = %(path)s
   AND created_at >= now() - %(ttl)s
"""
_COMPLETE = """
UPDATE idempotency_keys SET state = 'done', status_code = %(status)s, headers = %(headers)s, body = %(body)s
 WHERE workspace_id = %(ws)s AND principal = %(sub)s AND key = %(key)s AND path = %(path)s
   AND claim_id = %(claim)s
"""
_RELEASE = """
DELETE FROM idempotency_keys
 WHERE workspace_id = %(ws)s AND principal = %(sub)s AND key = %(key)s AND path = %(path)s
   AND claim_id = %(claim)s
"""
_PURGE = "DELETE FROM idempotency_keys WHERE created_at < now() - %(ttl)s"


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


def body_hash(method: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\n" + body).hexdigest()


async def claim(pool: AsyncConnectionPool[AsyncConn], key: KeyScope, digest: str) -> str | StoredResponse:
    """Our claim id when this request should run, or the stored response to replay; 409/422 otherwise."""
    claim_id = uuid.uuid4().hex
    async with pool.connection() as conn:
        for _ in range(_CLAIM_ATTEMPTS):
            if await (await conn.execute(_CLAIM, key.params(hash=digest, claim=claim_id))).fetchone():
                return claim_id
            row = await (await conn.execute(_EXISTING, key.params())).fetchone()
            if row is None:
                continue  # released between our two statements: try to claim again
            if row["body_hash"] != digest:
                raise ApiError(422, "idempotency_key_reused",
                               "This Idempotency-Key was already used with a different request body",
                               {"field": "Idempotency-Key", "reason": "reused with a different body"})
            if row["state"] != "done":
                raise ApiError(409, "idempotency_in_progress",
                               "A request with this Idempotency-Key is still being processed; retry later",
                               {"field": "Idempotency-Key", "reason": "in progress"})
            stored = {"status": row["status_code"], "headers": row["headers"], "body": row["body"]}
            return msgspec.convert(stored, StoredResponse)
    raise ApiError(409, "idempotency_in_progress", "This Idempotency-Key is contended; retry later",
                   {"field": "Idempotency-Key", "reason": "in progress"})


async def complete(pool: AsyncConnectionPool[AsyncConn], key: KeyScope, claim_id: str,
                   response: StoredResponse) -> None:
    async with pool.connection() as conn:
        await conn.execute(_COMPLETE, key.params(claim=claim_id, status=response.status,
                                                 headers=Jsonb(response.headers), body=response.body))


async def release(pool: AsyncConnectionPool[AsyncConn], key: KeyScope, claim_id: str) -> None:
    async with pool.connection() as conn:
        await conn.execute(_RELEASE, key.params(claim=claim_id))


async def purge_expired(pool: AsyncConnectionPool[AsyncConn]) -> int:
    """Delete rows past their TTL (they are already ignored); returns how many went."""
    async with pool.connection() as conn:
        return (await conn.execute(_PURGE, {"ttl": KEY_TTL})).rowcount


async def _replay(stored: StoredResponse, send: Send) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers]
    headers += [(b"idempotency-replayed", b"true"), (b"content-length", str(len(stored.body)).encode())]
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": stored.status, "headers": headers}
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": stored.body, "more_body": False}
    await send(start)
    await send(body)


class _Recorder:
    """Wraps `send` to keep the status, the replayable headers and the body of the response going out."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            pairs = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in message.get("headers", ())]
            self.headers = [(k, v) for k, v in pairs if k.lower() in REPLAYED_HEADERS]
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
        await self.send(message)

    def stored(self) -> StoredResponse:
        return StoredResponse(status=self.status, headers=self.headers, body=b"".join(self.chunks))


SECRET_RESPONSE_OPT_KEY = "secret_response"
SECRET_RESPONSE: dict[str, Any] = {SECRET_RESPONSE_OPT_KEY: True}
"""`opt=SECRET_RESPONSE` on a route whose 2xx reveals a secret once (a TOTP secret): its response is never stored
for replay, so the secret never rests in plain text in `idempotency_keys`; an Idempotency-Key is ignored there."""


class IdempotencyMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)
    exclude_opt_key = SECRET_RESPONSE_OPT_KEY

    def __init__(self, purge_every: timedelta = timedelta(hours=1)) -> None:
        self.purge_every = purge_every.total_seconds()
        self._next_purge = 0.0

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method = cast("HTTPScope", scope)["method"]
        raw_key = header_value(scope, b"idempotency-key")
        principal = scope.get("user")
        if method not in IDEMPOTENT_METHODS or raw_key is None or not isinstance(principal, Principal):
            await next_app(scope, receive, send)
            return
        if not 1 <= len(raw_key.strip()) <= MAX_KEY_LENGTH:
            raise validation_error("Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} characters")
        pool = infra_pool(scope)
        if pool is None:
            raise RuntimeError("app.state.infra_pool is missing: install ApiConventions")
        # Read through Litestar's Request: it enforces request_max_body_size and caches the body for the handler.
        body = await Request[Any, Any, Any](scope, receive).body()
        await standing_gate.settle_now(scope)  # the claim below is a write: never on behalf of a dead token
        await self._purge_now_and_then(pool)
        key = KeyScope(principal.workspace_id, principal.subject, raw_key.strip(), scope["path"])
        outcome = await claim(pool, key, body_hash(method, body))
        if isinstance(outcome, StoredResponse):
            await _replay(outcome, send)
            return
        await self._run(pool, key, outcome, scope, receive, send, next_app)

    async def _purge_now_and_then(self, pool: AsyncConnectionPool[AsyncConn]) -> None:
        if (now := time.monotonic()) < self._next_purge:
            return
        self._next_purge = now + self.purge_every
        try:
            await purge_expired(pool)
        except Exception:
            log.warning("could not purge expired idempotency keys", exc_info=True)

    async def _run(self, pool: AsyncConnectionPool[AsyncConn], key: KeyScope, claim_id: str, scope: Scope,
                   receive: Receive, send: Send, next_app: ASGIApp) -> None:
        recorder = _Recorder(send)
        try:
            await next_app(scope, receive, recorder)
        except BaseException:
            await release(pool, key, claim_id)
            raise
        response = recorder.stored()
        try:
            if 200 <= response.status < 300:
                await complete(pool, key, claim_id, response)
            else:
                await release(pool, key, claim_id)
        except Exception:
            # The answer already went out; the key stays in flight until ABANDONED_AFTER lets a retry take it.
            log.exception("could not record the outcome of Idempotency-Key %r on %s", key.key, key.path)
