"""The outbound webhook delivery worker: decide deliveries from the event stream, then send them.

Deciding: a durable JetStream consumer of its own (`proj-webhook_dispatch-v1`), run like a projector under a
leader lock: each batch's delivery rows commit in one transaction with its checkpoint, and are acked after the
commit (projections/webhooks/dispatch.py). A crash between commit and ack redelivers the messages; the checkpoint
and the unique (endpoint, event) key make them decide nothing new.

Sending: any number of processes. A claim takes due deliveries with `FOR UPDATE SKIP LOCKED` and leases them
(moves `next_attempt_at` past the timeout) in a short transaction, so no two senders send one delivery at once and a
sender that dies leaves its deliveries to be retried when the lease ends. Each attempt re-checks the target (URL
policy, DNS, the resolved address) and connects to the address it checked. Results are recorded in batches: every
attempt, then the delivery (succeeded; or retried with exponential backoff until 24 h after its first attempt, then
failed), and the endpoint's health: while an endpoint fails, its other queued deliveries wait (`hold_until`), and
an endpoint whose deliveries all failed for 24 h is disabled by a command (`WebhookEndpointDisabled`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from adapters.event_store import EventStore
from adapters.http_post import HttpError, PostClient
from adapters.postgres import AsyncConn, create_pool, listen_forever, writer_transaction
from adapters.secret_box import MasterKeyMissing, SecretBox, UndecryptableSecret, cached_box
from adapters.settings import Settings
from adapters.webhook_targets import Resolver, TargetRefused, parse_target, resolve_checked, sign, system_resolver
from commands.caller import Caller
from commands.group_commit import GroupCommitter
from commands.runner import CommandRunner, utc_now
from commands.webhooks import BOX_PURPOSE, WebhookCommands
from domain.events import Actor, ActorKind
from domain.ids import WorkspaceId
from projections.registry import DISPATCH
from workers.projector_runner import run_hosted

log = logging.getLogger(__name__)

RESPONSE_BODY_MAX = 1024
LEASE_MARGIN_S = 30.0
RETRY_CAP_S = 4 * 3600.0
CLAIM_MAX = 100
SCAN_FACTOR = 4
"""A claim looks at this many times as many due rows as it may take, to find other endpoints' behind a backlog."""
RECORD_MAX = 500
ACTOR = Actor(kind=ActorKind.SYSTEM, id="webhook-delivery")
Clock = Callable[[], datetime]


def channel(schema: str) -> str:
    """NOTIFY channel the decisions wake senders on (dispatch.py sends `current_schema() || '_webhooks'`)."""
    return f"{schema}_webhooks"


def backoff_s(attempt: int, base_s: float) -> float:
    """Exponential: base, 2×base, 4×base … capped at 4 h (5 s base: about 16 attempts in the first 24 h)."""
    return float(min(base_s * 2 ** max(attempt - 1, 0), RETRY_CAP_S))


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    workspace_id: str
    endpoint_id: str
    event_id: str
    kind: str
    payload: bytes
    attempt: int
    first_attempt_at: datetime
    url: str
    secret_ciphertext: str
    previous_secret_ciphertext: str | None
    previous_valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery: Claimed
    started_at: datetime
    latency_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


_CLAIM = """
WITH candidates AS (
    SELECT d.id, d.endpoint_id, d.next_attempt_at FROM webhook_deliveries d
    JOIN webhook_routes r ON r.workspace_id = d.workspace_id AND r.id = d.endpoint_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= %(now)s AND NOT r.deleted
      AND (r.status = 'active' OR d.kind = 'ping') AND NOT d.endpoint_id = ANY(%(full)s)
    ORDER BY d.next_attempt_at
    LIMIT %(scan)s
), fair AS (
    SELECT id, next_attempt_at,
           row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at) AS nth,
           coalesce((%(room)s::jsonb ->> endpoint_id)::int, %(cap)s) AS room
    FROM candidates
), due AS (
    SELECT d.id FROM webhook_deliveries d JOIN fair ON fair.id = d.id
    WHERE fair.nth <= fair.room AND d.status = 'pending' AND d.next_attempt_at <= %(now)s
    ORDER BY fair.next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d SET next_attempt_at = %(lease)s, attempts = d.attempts + 1,
    first_attempt_at = coalesce(d.first_attempt_at, %(now)s)
FROM due, webhook_routes r
WHERE d.id = due.id AND r.workspace_id = d.workspace_id AND r.id = d.endpoint_id
RETURNING d.id, d.workspace_id, d.endpoint_id, d.event_id, d.kind, d.payload, d.attempts AS attempt,
    d.first_attempt_at, r.url, r.secret_ciphertext, r.previous_secret_ciphertext, r.previous_valid_until
"""
"""Due deliveries, oldest first, but at most `cap` in flight per endpoint in this process (`room` says how many more
each busy endpoint may take, `full` names those at the cap): a slow receiver with a backlog cannot take every
slot from the others. Candidates are the `scan` oldest due rows outside the full endpoints."""
_ATTEMPT = """
INSERT INTO webhook_attempts (workspace_id, delivery_id, attempt, started_at, latency_ms, status_code, error,
                              response_body, succeeded)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
_SETTLE = """
UPDATE webhook_deliveries SET status = %s, next_attempt_at = %s, last_attempt_at = %s, last_status_code = %s,
    last_error = %s, delivered_at = coalesce(%s, delivered_at)
WHERE id = %s AND status = 'pending'
"""
_HEALTHY = """
UPDATE webhook_routes SET failing_since = NULL, last_success_at = %s WHERE workspace_id = %s AND id = %s
"""
_HOLD = """
UPDATE webhook_deliveries SET next_attempt_at = %(until)s
WHERE workspace_id = %(ws)s AND endpoint_id = %(endpoint)s AND status = 'pending' AND kind = 'event'
  AND next_attempt_at < %(until)s
"""
_FAILING = """
UPDATE webhook_routes SET failing_since = coalesce(failing_since, %s) WHERE workspace_id = %s AND id = %s
RETURNING workspace_id, id, failing_since, status
"""


class Sender:
    """Claims due deliveries, sends them with bounded concurrency, records the outcomes in batches."""

    def __init__(self, settings: Settings, pool: AsyncConnectionPool[AsyncConn], client: PostClient, *,
                 box: Callable[[], SecretBox], disable: Callable[[str, str, datetime], Any] | None = None,
                 clock: Clock = utc_now, resolver: Resolver = system_resolver) -> None:
        self.settings = settings
        self.pool = pool
        self.client = client
        self.box = box
        self.disable = disable
        self.clock = clock
        self.resolver = resolver
        self.wake = asyncio.Event()
        self.outcomes: asyncio.Queue[Outcome | None] = asyncio.Queue()
        self.slots = asyncio.Semaphore(settings.webhooks_concurrency)
        self.in_flight: set[asyncio.Task[None]] = set()
        self.busy: collections.Counter[str] = collections.Counter()
        """Deliveries in flight per endpoint in this process (at most `webhooks_per_endpoint_concurrency`)."""
        self._secrets: dict[tuple[str, str], str] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        recorder = asyncio.create_task(self._record_forever())
        try:
            while not stopping.is_set():
                self.wake.clear()  # before claiming: a wake during the claim (a NOTIFY, a slot freed) is kept
                try:
                    claimed = await self.claim_and_send()
                except Exception:  # Postgres away: what was claimed is leased, and is retried when the lease ends
                    log.exception("webhook sender: claiming failed; retrying in 1 s")
                    claimed = 0
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), 1.0)
                if claimed == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), self.settings.webhooks_poll_interval_s)
            if self.in_flight:
                await asyncio.wait(self.in_flight, timeout=self.settings.webhooks_timeout_s + 1)
            self.outcomes.put_nowait(None)  # the recorder records everything before it, then returns
            await asyncio.wait_for(asyncio.shield(recorder), timeout=30)
        finally:
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder

    async def claim_and_send(self) -> int:
        """Claim as many due deliveries as there are free slots (waiting for one when all are busy)."""
        await self.slots.acquire()
        free = 1
        while free < CLAIM_MAX and not self.slots.locked():
            await self.slots.acquire()
            free += 1
        try:
            claimed = await self.claim(free)
        except BaseException:
            for _ in range(free):
                self.slots.release()
            raise
        for _ in range(free - len(claimed)):
            self.slots.release()
        for delivery in claimed:
            task = asyncio.create_task(self._send_one(delivery))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        return len(claimed)

    async def claim(self, limit: int) -> list[Claimed]:
        now = self.clock()
        lease = now + timedelta(seconds=self.settings.webhooks_timeout_s + LEASE_MARGIN_S)
        cap = self.settings.webhooks_per_endpoint_concurrency
        busy = {endpoint: n for endpoint, n in self.busy.items() if n > 0}
        params = {"now": now, "lease": lease, "limit": limit, "scan": limit * SCAN_FACTOR, "cap": cap,
                  "full": [endpoint for endpoint, n in busy.items() if n >= cap],
                  "room": msgspec.json.encode({endpoint: cap - n for endpoint, n in busy.items() if n < cap}).decode()}
        async with writer_transaction(self.pool) as conn:
            cur = await conn.execute(_CLAIM, params)
            rows = await cur.fetchall()
        claimed = [Claimed(**{**row, "payload": bytes(row["payload"])}) for row in rows]  # type: ignore[call-overload]
        self.busy.update(delivery.endpoint_id for delivery in claimed)
        return claimed

    async def _send_one(self, delivery: Claimed) -> None:
        try:
            outcome = await self.send(delivery)
        except Exception as exc:  # never lose an outcome: an unexpected error is a failed attempt
            log.exception("webhook delivery %s: unexpected error", delivery.id)
            outcome = Outcome(delivery=delivery, started_at=self.clock(), latency_ms=0.0, status_code=None,
                              error=f"internal error: {type(exc).__name__}", response_body=None)
        finally:
            self.slots.release()
            if self.busy[delivery.endpoint_id] >= self.settings.webhooks_per_endpoint_concurrency:
                self.wake.set()  # the claim loop may be waiting because this endpoint was full: it has room now
            self.busy[delivery.endpoint_id] -= 1
        self.outcomes.put_nowait(outcome)

    def signature(self, delivery: Claimed, now: datetime) -> str:
        """The new secret's signature; during a rotation's overlap also the previous one's, after a comma."""
        signatures = [sign(self._secret(delivery.endpoint_id, delivery.secret_ciphertext), delivery.payload)]
        if (delivery.previous_secret_ciphertext and delivery.previous_valid_until is not None
                and now < delivery.previous_valid_until):
            signatures.append(sign(self._secret(delivery.endpoint_id, delivery.previous_secret_ciphertext),
                                   delivery.payload))
        return ",".join(signatures)

    def _secret(self, endpoint_id: str, ciphertext: str) -> str:
        key = (endpoint_id, ciphertext)
        if key not in self._secrets:
            if len(self._secrets) > 10_000:
                self._secrets.clear()
            self._secrets[key] = self.box().open(ciphertext, endpoint_id)
        return self._secrets[key]

    async def send(self, delivery: Claimed) -> Outcome:
        started_at = self.clock()
        began = time.monotonic()

        def outcome(status: int | None, error: str | None, body: str | None = None) -> Outcome:
            return Outcome(delivery=delivery, started_at=started_at, latency_ms=(time.monotonic() - began) * 1000,
                           status_code=status, error=error, response_body=body)

        try:
            target = parse_target(delivery.url, self.settings)
            address = await resolve_checked(target, self.settings, self.resolver)
            signature = self.signature(delivery, started_at)
        except TargetRefused as exc:
            return outcome(None, f"target refused: {exc}")
        except UndecryptableSecret:
            return outcome(None, "the signing secret cannot be decrypted with this master key")
        except MasterKeyMissing:
            return outcome(None, "CAUSELOOP_MASTER_KEY is not configured: deliveries cannot be signed")
        headers = {"content-type": "application/json", "x-causeloop-signature": signature,
                   "x-causeloop-event-id": delivery.event_id,
                   "x-causeloop-timestamp": str(int(started_at.timestamp())),
                   "x-causeloop-delivery-id": delivery.id}
        try:
            async with asyncio.timeout(self.settings.webhooks_timeout_s):
                response = await self.client.post(
                    address=address, port=target.port, tls=target.scheme == "https", server_name=target.host,
                    host_header=target.host_header, path=target.path, headers=headers, body=delivery.payload)
        except TimeoutError:
            return outcome(None, f"timed out after {self.settings.webhooks_timeout_s:g} s")
        except HttpError as exc:
            return outcome(None, str(exc)[:500])
        text = response.body.decode("utf-8", "replace")[:RESPONSE_BODY_MAX]
        return outcome(response.status, None if 200 <= response.status < 300 else f"HTTP {response.status}", text)

    async def _record_forever(self) -> None:
        """Record batches of outcomes until the None that `run` puts last; a batch that cannot be recorded
        (Postgres away) is tried again, never dropped (its deliveries stay leased meanwhile)."""
        done = False
        while not done:
            batch: list[Outcome] = []
            for item in [await self.outcomes.get(), *self._drain(RECORD_MAX - 1)]:
                if item is None:
                    done = True
                else:
                    batch.append(item)
            while batch:
                try:
                    await self.record(batch)
                    break
                except Exception:
                    log.exception("webhook sender: recording %d outcomes failed; retrying in 1 s", len(batch))
                    await asyncio.sleep(1.0)

    def _drain(self, limit: int) -> list[Outcome | None]:
        drained: list[Outcome | None] = []
        while len(drained) < limit:
            try:
                drained.append(self.outcomes.get_nowait())
            except asyncio.QueueEmpty:
                break
        return drained

    async def record(self, outcomes: list[Outcome]) -> None:
        """Every attempt, each delivery's next state and each endpoint's health, in one transaction; then disable
        the endpoints whose deliveries have all failed for WEBHOOKS_DISABLE_AFTER_S."""
        now = self.clock()
        window = timedelta(seconds=self.settings.webhooks_retry_window_s)
        attempts: list[tuple[object, ...]] = []
        settles: list[tuple[object, ...]] = []
        healthy: dict[tuple[str, str], datetime] = {}
        failing: dict[tuple[str, str], datetime] = {}
        for outcome in outcomes:
            delivery = outcome.delivery
            attempts.append((delivery.workspace_id, delivery.id, delivery.attempt, outcome.started_at,
                             outcome.latency_ms, outcome.status_code, outcome.error, outcome.response_body,
                             outcome.succeeded))
            if outcome.succeeded:
                status, next_at, delivered = "succeeded", now, now
            elif delivery.kind == "ping" or now - delivery.first_attempt_at >= window:
                status, next_at, delivered = "failed", now, None
            else:
                delay = timedelta(seconds=backoff_s(delivery.attempt, self.settings.webhooks_retry_base_s))
                status, next_at, delivered = "pending", min(now + delay, delivery.first_attempt_at + window), None
            settles.append((status, next_at, now, outcome.status_code, outcome.error, delivered, delivery.id))
            if delivery.kind == "event":
                key = (delivery.workspace_id, delivery.endpoint_id)
                if outcome.succeeded:
                    healthy[key] = outcome.started_at
                    failing.pop(key, None)
                elif key not in healthy:
                    failing.setdefault(key, outcome.started_at)
        to_disable: list[tuple[str, str, datetime]] = []
        limit = timedelta(seconds=self.settings.webhooks_disable_after_s)
        async with writer_transaction(self.pool) as conn:
            async with conn.cursor() as cur:
                await cur.executemany(_ATTEMPT, attempts)
                await cur.executemany(_SETTLE, settles)
                if healthy:
                    await cur.executemany(_HEALTHY, [(at, ws, endpoint) for (ws, endpoint), at in healthy.items()])
            for (ws, endpoint), at in failing.items():
                cur2 = await conn.execute(_FAILING, (at, ws, endpoint))
                row = await cur2.fetchone()
                since = row["failing_since"] if row is not None else None
                if row is None or not isinstance(since, datetime):
                    continue
                await conn.execute(_HOLD, {"until": hold_until(now, since, limit), "ws": ws, "endpoint": endpoint})
                if row["status"] == "active" and now - since >= limit:
                    to_disable.append((ws, endpoint, since))
        for ws, endpoint, since in to_disable:
            if self.disable is not None:
                try:
                    await self.disable(ws, endpoint, since)
                except Exception:
                    log.exception("could not disable webhook %s", endpoint)


def hold_until(now: datetime, failing_since: datetime, disable_after: timedelta) -> datetime:
    """Until when a failing endpoint's queued deliveries wait: as long again as it has been failing (at least 1 s, at
    most 4 h), and never past the moment it would be disabled (they are tried then, and decide it). A receiver that
    is down is probed by its retries instead of being sent everything queued for it, and a hanging one cannot keep
    taking every sending slot: its queue waits longer each time (exponential in effect)."""
    wait = min(max(now - failing_since, timedelta(seconds=1)), timedelta(seconds=RETRY_CAP_S))
    return min(now + wait, failing_since + disable_after)


async def run_sender(settings: Settings, stopping: asyncio.Event, *, clock: Clock = utc_now,
                     resolver: Resolver = system_resolver) -> None:
    """One sender until `stopping`: its pool, HTTP client, a LISTEN that wakes it, and a command runner to disable
    endpoints."""
    box = cached_box(settings, BOX_PURPOSE)
    store = EventStore(settings, pool_size=1)
    committer = GroupCommitter(store)
    commands = WebhookCommands(CommandRunner(store, committer, clock=clock), box,
                               overlap=timedelta(seconds=settings.webhooks_secret_overlap_s))

    async def disable(workspace_id: str, endpoint_id: str, since: datetime) -> None:
        hours = settings.webhooks_disable_after_s / 3600
        await commands.disable_for_failures(Caller(workspace_id=WorkspaceId(workspace_id), actor=ACTOR),
                                            endpoint_id, failing_since=since,
                                            reason=f"every delivery failed for {hours:g} h")

    pool = create_pool(settings, min_size=1, max_size=4, name="webhook-sender", custom_plans=True)
    client = PostClient(body_max=RESPONSE_BODY_MAX * 4)
    await pool.open()
    sender = Sender(settings, pool, client, box=box, disable=disable, clock=clock, resolver=resolver)
    listener = asyncio.create_task(listen_forever(settings, {channel(settings.database_schema):
                                                             lambda _: sender.wake.set()}))
    try:
        await sender.run(stopping)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await client.aclose()
        await pool.close()
        committer.close()
        store.close()


async def run_webhooks(settings: Settings, stopping: asyncio.Event, *, clock: Clock = utc_now,
                       resolver: Resolver = system_resolver) -> None:
    """The whole worker: deciding (leader-elected) and sending (in every process), until `stopping`."""
    await asyncio.gather(run_hosted(settings, [DISPATCH], stopping),
                         run_sender(settings, stopping, clock=clock, resolver=resolver))
