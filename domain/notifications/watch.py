"""Watching a pattern: one stream per pattern and user, whose last event says whether the user watches."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from domain.events import Meta, envelope
from domain.notifications.events import PatternUnwatched, PatternWatched, PatternWatchEvent


def watching(history: Sequence[PatternWatchEvent]) -> bool:
    return bool(history) and isinstance(history[-1], PatternWatched)


def watch(history: Sequence[PatternWatchEvent], stream_id: UUID, meta: Meta, *, user_id: str, pattern_id: str
          ) -> list[PatternWatchEvent]:
    """Watching a pattern one already watches records nothing (the route is idempotent)."""
    if watching(history):
        return []
    return [PatternWatched(**envelope(meta, stream_id, _next(history)), user_id=user_id, pattern_id=pattern_id)]


def unwatch(history: Sequence[PatternWatchEvent], stream_id: UUID, meta: Meta, *, user_id: str, pattern_id: str
            ) -> list[PatternWatchEvent]:
    """Unwatching a pattern one does not watch records nothing."""
    if not watching(history):
        return []
    return [PatternUnwatched(**envelope(meta, stream_id, _next(history)), user_id=user_id, pattern_id=pattern_id)]


def _next(history: Sequence[PatternWatchEvent]) -> int:
    return history[-1].originator_version + 1 if history else 1
