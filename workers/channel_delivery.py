"""The channel-delivery worker: sends the notices queued for the users' outside channels (e-mail, Slack, Microsoft
Teams, PagerDuty) by the notifications projector (`notification_deliveries`).

Any number of processes. A claim takes due rows with `FOR UPDATE SKIP LOCKED` and leases them (moves
`next_attempt_at` past the send deadline, counts the attempt) in a short transaction; the rows of one user, channel
and digest period go out as one message. Each outcome is recorded with its attempt in one transaction: sent; or
retried with exponential backoff until CHANNELS_RETRY_WINDOW_S after the first attempt, then failed; a refusal that
would only repeat (a revoked webhook: 400/401/403/404/410, a refused target, no address) fails at once; e-mail
without SMTP_URL is skipped with its reason. A row is sent again only when a process died between sending it and
recording the outcome (its lease ends): receivers see a notice at most twice, and PagerDuty folds the two into one
incident by their shared `dedup_key`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from adapters.channel_targets import checked_target
from adapters.http_post import HttpError, PostClient
from adapters.postgres import AsyncConn, create_pool, writer_transaction
from adapters.secret_box import MasterKeyMissing, SecretBox, UndecryptableSecret, cached_box
from adapters.settings import Settings
from adapters.smtp_mail import send_mail
from adapters.webhook_targets import Resolver, TargetRefused, system_resolver
from commands.notifications import BOX_PURPOSE
from commands.runner import utc_now
from domain.notifications import channels as render
from workers.webhook_delivery import backoff_s

log = logging.getLogger(__name__)

CLAIM_MAX = 100
LEASE_MARGIN_S = 30.0
SENDS_AT_ONCE = 16
Clock = Callable[[], datetime]


class Claimed(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: str
    user_id: str
    notification_id: str
    channel: str
    type: str
    title: str
    entity_type: str | None
    entity_id: str | None
    severity: int | None
    created_at: datetime
    target_ciphertext: str | None
    digest: str
    batch: datetime | None
    attempt: int
    first_attempt_at: datetime

    def notice(self) -> render.Notice:
        return render.Notice(type=self.type, title=self.title, entity_type=self.entity_type,
                             entity_id=self.entity_id, created_at=self.created_at, severity=self.severity)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    """`sent`, `retry`, `failed` (for good) or `skipped`."""
    status_code: int | None = None
    error: str | None = None


_CLAIM = """
WITH due AS (
    SELECT workspace_id, user_id, notification_id, channel FROM notification_deliveries
    WHERE status = 'pending' AND next_attempt_at <= %(now)s
    ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
)
UPDATE notification_deliveries d SET next_attempt_at = %(lease)s, attempts = d.attempts + 1,
    first_attempt_at = coalesce(d.first_attempt_at, %(now)s)
FROM due WHERE (d.workspace_id, d.user_id, d.notification_id, d.channel)
             = (due.workspace_id, due.user_id, due.notification_id, due.channel)
RETURNING d.workspace_id, d.user_id, d.notification_id, d.channel, d.type, d.title, d.entity_type, d.entity_id,
    d.severity, d.created_at, d.target_ciphertext, d.digest, d.batch, d.attempts AS attempt, d.first_attempt_at
"""
_ATTEMPT = """
INSERT INTO notification_delivery_attempts (workspace_id, user_id, notification_id, channel, attempt, started_at,
                                            status_code, error, succeeded)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
_SETTLE = """
UPDATE notification_deliveries SET status = %s, next_attempt_at = %s, last_attempt_at = %s, last_status_code = %s,
    last_error = %s, sent_at = %s
WHERE workspace_id = %s AND user_id = %s AND notification_id = %s AND channel = %s AND status = 'pending'
"""


def group_key(row: Claimed) -> tuple[str, str, str, str]:
    """A digest's rows go out together; a realtime row alone."""
    return row.workspace_id, row.user_id, row.channel, row.batch.isoformat() if row.batch else row.notification_id


class ChannelSender:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool[AsyncConn], client: PostClient, *,
                 box: Callable[[], SecretBox], clock: Clock = utc_now, resolver: Resolver = system_resolver) -> None:
        self.settings = settings
        self.pool = pool
        self.client = client
        self.box = box
        self.clock = clock
        self.resolver = resolver
        self.slots = asyncio.Semaphore(SENDS_AT_ONCE)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                sent = await self.run_once()
            except Exception:  # Postgres away: what was claimed stays leased and is retried when the lease ends
                log.exception("channel delivery: a round failed; retrying in 1 s")
                sent = 0
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.settings.channels_poll_interval_s)

    async def run_once(self) -> int:
        """Claim the due rows, send them (a digest's as one message), record the outcomes; returns rows claimed."""
        claimed = await self.claim()
        groups: dict[tuple[str, str, str, str], list[Claimed]] = {}
        for row in claimed:
            groups.setdefault(group_key(row), []).append(row)
        started = self.clock()
        outcomes = await asyncio.gather(*(self._send_bounded(rows) for rows in groups.values()))
        await self.record(started, list(zip(groups.values(), outcomes, strict=True)))
        return len(claimed)

    async def claim(self) -> list[Claimed]:
        now = self.clock()
        lease = now + timedelta(seconds=self.settings.channels_timeout_s + LEASE_MARGIN_S)
        async with writer_transaction(self.pool) as conn:
            cur = await conn.execute(_CLAIM, {"now": now, "lease": lease, "limit": CLAIM_MAX})
            return [msgspec.convert(row, Claimed) for row in await cur.fetchall()]

    async def _send_bounded(self, rows: list[Claimed]) -> Outcome:
        async with self.slots:
            try:
                return await self.send(rows)
            except Exception as exc:  # never lose an outcome: an unexpected error is a failed attempt
                log.exception("channel delivery to %s: unexpected error", rows[0].channel)
                return Outcome("retry", error=f"internal error: {type(exc).__name__}")

    async def send(self, rows: list[Claimed]) -> Outcome:
        first = rows[0]
        notices = [row.notice() for row in rows]
        app_url = self.settings.app_url
        if first.channel == "email":
            return await self._email(first, render.email(notices, first.digest, app_url))
        latest = max(rows, key=lambda row: row.created_at)
        try:
            secret = self.box().open(latest.target_ciphertext or "",
                                     f"{first.workspace_id}:{first.user_id}:{first.channel}")
            target, address = await checked_target(first.channel, secret, self.settings, self.resolver)
        except (UndecryptableSecret, MasterKeyMissing) as exc:
            return Outcome("failed", error=f"the channel secret cannot be opened: {type(exc).__name__}")
        except TargetRefused as exc:
            return Outcome("failed", error=f"target refused: {exc}")
        body: Any
        if first.channel == "slack":
            body = render.slack_message(notices, first.digest, app_url)
        elif first.channel == "teams":
            body = render.teams_card(notices, first.digest, app_url)
        else:
            dedup = (f"causeloop:{first.notification_id}" if first.batch is None
                     else f"causeloop:{first.user_id}:digest:{first.batch.isoformat()}")
            body = render.pagerduty_event(notices, first.digest, app_url, routing_key=secret, dedup_key=dedup)
        try:
            async with asyncio.timeout(self.settings.channels_timeout_s):
                response = await self.client.post(
                    address=address, port=target.port, tls=target.scheme == "https", server_name=target.host,
                    host_header=target.host_header, path=target.path, headers={"content-type": "application/json"},
                    body=msgspec.json.encode(body))
        except TimeoutError:
            return Outcome("retry", error=f"timed out after {self.settings.channels_timeout_s:g} s")
        except HttpError as exc:
            return Outcome("retry", error=str(exc)[:500])
        if 200 <= response.status < 300:
            return Outcome("sent", response.status)
        permanent = response.status in render.PERMANENT_STATUSES
        detail = response.body.decode("utf-8", "replace")[:200]
        return Outcome("failed" if permanent else "retry", response.status, f"HTTP {response.status}: {detail}")

    async def _email(self, first: Claimed, mail: render.Email) -> Outcome:
        if not self.settings.smtp_url:
            return Outcome("skipped", error="SMTP_URL is not configured: e-mail is not sent")
        async with writer_transaction(self.pool) as conn:
            cur = await conn.execute("SELECT email FROM users WHERE id = %s", (first.user_id,))
            found = await cur.fetchone()
        if found is None:
            return Outcome("failed", error="no e-mail address is known for this user")
        try:
            await asyncio.wait_for(asyncio.to_thread(
                send_mail, self.settings.smtp_url, self.settings.smtp_from, str(found["email"]), mail.subject,
                mail.body, timeout_s=self.settings.channels_timeout_s), self.settings.channels_timeout_s + 1)
        except (OSError, TimeoutError) as exc:  # smtplib.SMTPException is an OSError
            return Outcome("retry", error=f"SMTP: {exc}"[:500])
        return Outcome("sent")

    async def record(self, started: datetime, results: list[tuple[list[Claimed], Outcome]]) -> None:
        """Each row's attempt and next state, in one transaction."""
        now = self.clock()
        window = timedelta(seconds=self.settings.channels_retry_window_s)
        attempts: list[tuple[object, ...]] = []
        settles: list[tuple[object, ...]] = []
        for rows, outcome in results:
            for row in rows:
                key = (row.workspace_id, row.user_id, row.notification_id, row.channel)
                attempts.append((*key, row.attempt, started, outcome.status_code, outcome.error,
                                 outcome.status == "sent"))
                status, next_at = outcome.status, now
                if status == "retry":
                    if now - row.first_attempt_at >= window:
                        status = "failed"
                    else:
                        delay = timedelta(seconds=backoff_s(row.attempt, self.settings.channels_retry_base_s))
                        status, next_at = "pending", min(now + delay, row.first_attempt_at + window)
                settles.append((status, next_at, now, outcome.status_code, outcome.error,
                                now if status == "sent" else None, *key))
        if not attempts:
            return
        async with writer_transaction(self.pool) as conn, conn.cursor() as cur:
            await cur.executemany(_ATTEMPT, attempts)
            await cur.executemany(_SETTLE, settles)


async def run_channel_delivery(settings: Settings, stopping: asyncio.Event, *, clock: Clock = utc_now,
                               resolver: Resolver = system_resolver) -> None:
    """One sender until `stopping`, with its own pool and HTTP client."""
    pool = create_pool(settings, min_size=1, max_size=2, name="channel-sender", custom_plans=True)
    client = PostClient(body_max=4096)
    await pool.open()
    try:
        await ChannelSender(settings, pool, client, box=cached_box(settings, BOX_PURPOSE), clock=clock,
                            resolver=resolver).run(stopping)
    finally:
        await client.aclose()
        await pool.close()
