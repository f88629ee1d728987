"""Idempotency-Key on POST/PATCH/PUT (api.md A): per (workspace, principal, key, path), in Postgres, 24 h.

The first request claims the key (with a hash of method + raw body) and runs; each command it runs commits its
result with its events (adapters/idempotency.py). A 2xx answer is stored and replayed to later requests with
`Idempotency-Replayed: true` without running the handler. If the process died after a command committed, a
retry takes the claim over and runs the handler again, its commands answering their committed results instead of
deciding again (`Idempotency-Replayed: true` too): the same outcome, nothing applied twice. A non-2xx answer with
nothing committed forgets the key, so a retry runs afresh. Same key with another body → 422
`idempotency_key_reused`; same key while the first still runs → 409 `idempotency_in_progress` with Retry-After.
It runs after AuthMiddleware and reads the Principal it set; without one (public routes) it stands aside.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import timedelta
from typing import Any, cast

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
from psycopg_pool import AsyncConnectionPool

from adapters import idempotency as store
from adapters.idempotency import Claim, KeyScope, StoredResponse
from adapters.postgres import AsyncConn
from adapters.tokens import Principal
from api.core.errors import ApiError, validation_error
from api.core.rate_limit import infra_pool
from api.core.request_id import header_value

log = logging.getLogger("causeloop.api.core.idempotency")

IDEMPOTENT_METHODS = frozenset({"POST", "PATCH", "PUT"})
MAX_KEY_LENGTH = 255
REPLAYED_HEADERS = frozenset({"content-type", "location", "etag"})
_CLAIM_KEY = "causeloop.idempotency_claim"


def body_hash(method: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\n" + body).hexdigest()


def claim_of(scope: Scope) -> Claim | None:
    """The request's claim on its Idempotency-Key (None without one): the write side records its steps."""
    claimed = scope.get("state", {}).get(_CLAIM_KEY)
    return claimed if isinstance(claimed, Claim) else None


def in_progress() -> ApiError:
    return ApiError(409, "idempotency_in_progress",
                    "A request with this Idempotency-Key is still being processed; retry later",
                    {"field": "Idempotency-Key", "reason": "in progress"},
                    headers={"Retry-After": str(max(1, int(store.ABANDONED_AFTER.total_seconds())))})


async def _replay(stored: StoredResponse, send: Send) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers]
    headers += [(b"idempotency-replayed", b"true"), (b"content-length", str(len(stored.body)).encode())]
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": stored.status, "headers": headers}
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": stored.body, "more_body": False}
    await send(start)
    await send(body)


class _Recorder:
    """Wraps `send` to keep the status, the replayable headers and the body of the response going out; marks it
    replayed when its commands' results came from a crashed predecessor."""

    def __init__(self, send: Send, *, replayed: bool) -> None:
        self.send = send
        self.replayed = replayed
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            pairs = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in message.get("headers", ())]
            self.headers = [(k, v) for k, v in pairs if k.lower() in REPLAYED_HEADERS]
            if self.replayed:
                message = {**message, "headers": [*message.get("headers", ()), (b"idempotency-replayed", b"true")]}
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
        await self._purge_now_and_then(pool)
        key = KeyScope(principal.workspace_id, principal.subject, raw_key.strip(), scope["path"])
        outcome = await store.claim(pool, key, body_hash(method, body))
        if outcome == "reused":
            raise ApiError(422, "idempotency_key_reused",
                           "This Idempotency-Key was already used with a different request body",
                           {"field": "Idempotency-Key", "reason": "reused with a different body"})
        if outcome == "in_progress":
            raise in_progress()
        if isinstance(outcome, StoredResponse):
            await _replay(outcome, send)
            return
        assert isinstance(outcome, Claim)
        scope.setdefault("state", {})[_CLAIM_KEY] = outcome
        await self._run(pool, outcome, scope, receive, send, next_app)

    async def _purge_now_and_then(self, pool: AsyncConnectionPool[AsyncConn]) -> None:
        if (now := time.monotonic()) < self._next_purge:
            return
        self._next_purge = now + self.purge_every
        try:
            await store.purge_expired(pool)
        except Exception:
            log.warning("could not purge expired idempotency keys", exc_info=True)

    async def _run(self, pool: AsyncConnectionPool[AsyncConn], claimed: Claim, scope: Scope,
                   receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the route; a 2xx is stored for replay. Its commands' results already committed with their events,
        so whatever happens after them, a retry answers the same (api/core/idempotency.py, adapters/idempotency.py)."""
        recorder = _Recorder(send, replayed=bool(claimed.committed))
        try:
            await next_app(scope, receive, recorder)
        except BaseException:
            await store.release(pool, claimed)
            raise
        response = recorder.stored()
        try:
            if 200 <= response.status < 300:
                await store.complete(pool, claimed, response)
            else:
                await store.release(pool, claimed)
        except Exception:
            # The answer already went out; a retry finds the committed steps and replays them.
            log.exception("could not record the outcome of Idempotency-Key %r on %s", claimed.scope.key,
                          claimed.scope.path)
