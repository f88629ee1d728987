"""NATS JetStream plumbing: connection, the one stream, publish headers and a fetch that treats 'nothing' as []."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from adapters.ids import event_id
from adapters.settings import Settings
from domain.events import DomainEvent

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 120.0


async def connect(settings: Settings, *, name: str,
                  on_reconnect: Callable[[], Awaitable[None]] | None = None) -> Client:
    """A connection that keeps reconnecting forever; `on_reconnect` lets consumers recreate subscriptions."""

    async def reconnected() -> None:
        log.warning("nats reconnected (%s)", name)
        if on_reconnect is not None:
            await on_reconnect()

    async def errored(exc: Exception) -> None:
        log.warning("nats error (%s): %s", name, exc)

    servers = [url.strip() for url in settings.nats_url.split(",") if url.strip()]
    client: Client = await nats.connect(servers=servers, name=name, max_reconnect_attempts=-1,
                                        reconnect_time_wait=0.5, reconnected_cb=reconnected, error_cb=errored)
    return client


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    """One stream holds every event subject `<prefix>.>`; creating it twice is harmless."""
    config = StreamConfig(name=settings.nats_stream, subjects=[f"{settings.subject_prefix}.>"],
                          retention=RetentionPolicy.LIMITS, storage=StorageType.FILE,
                          duplicate_window=DUPLICATE_WINDOW_S, num_replicas=settings.nats_stream_replicas)
    try:
        await js.stream_info(settings.nats_stream)
    except NotFoundError:
        await js.add_stream(config)


STORE_HEADER = "Causeloop-Store"
"""The id of the event store a message comes from (`event_store.store_id`)."""
POSITION_HEADER = "Causeloop-Position"


def headers_for(event: DomainEvent, position: int, store: str) -> dict[str, str]:
    return {
        "Nats-Msg-Id": str(event_id(event.originator_id, event.originator_version)),
        STORE_HEADER: store,
        POSITION_HEADER: str(position),
        "Causeloop-Stream-Version": str(event.originator_version),
        "Causeloop-Type": type(event).__name__,
        "Causeloop-Schema-Version": str(type(event).schema_version),
    }


DRAIN_WAIT_S = 0.002
"""How long the second fetch of a batch lingers for more messages: the server holds a pull that carries an expiry
for all of it, so this is added to every batch (10 ms measured lag p99 127–309 ms at 1,000 events/s, 2 ms 110–153)."""


async def fetch_batch(sub: JetStreamContext.PullSubscription, size: int, timeout: float) -> list[Msg]:
    """Wait up to `timeout` for one message, then take what else is already there, up to `size`.

    A single `fetch(size)` keeps collecting until the batch is full or the whole timeout has passed,
    which under a steady trickle adds up to `timeout` of latency to every event.
    """
    first = await _fetch(sub, 1, timeout)
    if not first or size == 1:
        return first
    return first + await _fetch(sub, size - 1, DRAIN_WAIT_S)


async def _fetch(sub: JetStreamContext.PullSubscription, size: int, timeout: float) -> list[Msg]:
    try:
        messages: list[Msg] = await sub.fetch(size, timeout=timeout)
    except (NatsTimeout, TimeoutError):  # nats-py raises either, depending on where the wait ended
        return []
    return messages
