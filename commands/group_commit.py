"""Group commit: concurrent commands share one event-store transaction, since the cost is per transaction."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future

from adapters.event_store import EventStore, IntegrityError, Outcome
from adapters.idempotency import ClaimLost, StepRecord
from domain.events import DomainEvent

log = logging.getLogger(__name__)


class ConcurrencyConflict(Exception):
    """Another command appended to the same stream first; the caller's decision was based on stale state."""


class _Pending:
    __slots__ = ("events", "future", "record")

    def __init__(self, events: Sequence[DomainEvent], record: StepRecord | None) -> None:
        self.events = events
        self.record = record
        self.future: Future[list[int]] = Future()


class GroupCommitter:
    """One writer thread drains the queue into a single `append`; a conflicting command fails alone."""

    def __init__(self, store: EventStore, max_batch: int = 500) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, events: Sequence[DomainEvent], record: StepRecord | None = None) -> Future[list[int]]:
        """Queue `events` to be appended atomically together, with `record` (an idempotency step's result) in the
        same transaction; the future holds their positions, or the refusal."""
        pending = _Pending(events, record)
        if not events:
            pending.future.set_result([])
        else:
            self._queue.put(pending)
        return pending.future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._commit(batch)
                    return
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        outcomes: list[Outcome] = []
        offset = 0
        for pending in batch:
            if pending.record is not None:
                outcomes.append((offset, offset + len(pending.events), pending.record))
            offset += len(pending.events)
        try:
            positions = self._store.append([event for pending in batch for event in pending.events], outcomes)
        except (IntegrityError, ClaimLost) as refusal:
            if len(batch) == 1:
                lost = isinstance(refusal, ClaimLost)
                batch[0].future.set_exception(refusal if lost else ConcurrencyConflict("stream changed concurrently"))
                return
            for pending in batch:
                self._commit([pending])
            return
        except Exception as exc:  # the store is down: every waiting caller must hear about it
            log.exception("event store append failed")
            for pending in batch:
                pending.future.set_exception(exc)
            return
        offset = 0
        for pending in batch:
            count = len(pending.events)
            pending.future.set_result(positions[offset:offset + count])
            offset += count
