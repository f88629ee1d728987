"""Id generation (time-ordered ULIDs) and deterministic ids for uniqueness keys."""

from __future__ import annotations

import os
import time
import uuid

from domain.ids import render

_NAMESPACE = uuid.UUID("5b0d7c64-2c1e-4f43-9c55-6a3f0d0e9b21")


def new_uuid() -> uuid.UUID:
    """A ULID as a UUID: 48 bits of milliseconds, then 80 random bits, so ids sort by creation time."""
    millis = time.time_ns() // 1_000_000
    return uuid.UUID(int=(millis << 80) | int.from_bytes(os.urandom(10), "big"))


def new_id(prefix: str) -> str:
    return render(prefix, new_uuid())


def keyed_uuid(*parts: str) -> uuid.UUID:
    """The same key always names the same stream, so the event store's primary key enforces uniqueness."""
    return uuid.uuid5(_NAMESPACE, "\x1f".join(parts))


def event_id(stream_id: uuid.UUID, version: int) -> uuid.UUID:
    """An event's id: stable across republishing, so NATS dedupes on it."""
    return uuid.uuid5(stream_id, str(version))
