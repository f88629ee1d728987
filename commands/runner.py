"""The one way a command writes: load, decide (pure domain), append with the versions it decided on, retry a bounded
number of times when another writer got there first, and answer with one `Result`.

A command module only says how to decide: `await runner.run(caller, decide)`, where `decide(context)` loads what it
needs through the context and returns a `Decision` (its own stream as loaded, the events to append, a secret to
reveal once). Appends go through the group committer (one transaction for concurrent commands). The clock and the
id source are injected here, once.

Idempotency: when the request holds an Idempotency-Key claim (adapters/idempotency.py), each `run` is a step of
it. The step's result commits in the same transaction as its events; a retry after a crash finds it and `run`
answers the committed result instead of deciding again, so nothing is applied twice and the answer is the first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

import msgspec

from adapters.event_store import EventStore
from adapters.ids import new_uuid
from commands.caller import Caller
from commands.errors import StaleVersion
from commands.group_commit import ConcurrencyConflict, GroupCommitter
from domain.events import DomainEvent, Meta

MAX_ATTEMPTS = 3
E = TypeVar("E", bound=DomainEvent)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Decision:
    """What one attempt decided: `history` is the command's own stream as loaded (its id and version answer the
    caller), `events` what to append (to any streams; none for a no-op)."""

    stream_id: UUID
    history: Sequence[DomainEvent]
    events: Sequence[DomainEvent] = ()
    revealed: str | None = None
    """A secret the command generated (a token, an invitation link): in the answer once, never in an event."""

    @property
    def loaded_version(self) -> int:
        return self.history[-1].originator_version if self.history else 0


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """What every command answers: its stream, the stream's version now, the position to wait for (0 when nothing
    was appended), whether it started the stream, a secret to show once, and the stream's events up to `version`
    (to render the answer)."""

    stream_id: UUID
    version: int
    position: int
    created: bool = False
    revealed: str | None = None
    stream: tuple[DomainEvent, ...] = ()

    def own(self, kind: type[E]) -> list[E]:
        """The stream's events of `kind` (a stream holds one aggregate's events)."""
        return [event for event in self.stream if isinstance(event, kind)]


class _Step(msgspec.Struct, frozen=True):
    """A step's result as an idempotency claim keeps it (the stream is reloaded on replay)."""

    stream_id: UUID
    version: int
    position: int
    created: bool
    revealed: str | None


_step_encoder = msgspec.json.Encoder()


class Context:
    """What a decision may use besides the pure domain: the attempt's metadata, new ids and stream loading."""

    def __init__(self, runner: CommandRunner, meta: Meta) -> None:
        self.meta = meta
        self._runner = runner

    def new_uuid(self) -> UUID:
        return self._runner.new_uuid()

    async def load(self, stream_id: UUID, kind: type[E]) -> list[E]:
        return await self._runner.load(stream_id, kind)

    async def load_many(self, stream_ids: Collection[UUID], kind: type[E]) -> dict[UUID, list[E]]:
        """Several streams in one read (a batch decision); streams with no event of `kind` are absent."""
        return await self._runner.load_many(stream_ids, kind)


Decide = Callable[[Context], Awaitable[Decision]]


class CommandRunner:
    def __init__(self, store: EventStore, committer: GroupCommitter, *, clock: Callable[[], datetime] = utc_now,
                 ids: Callable[[], UUID] = new_uuid) -> None:
        self.store = store
        self.committer = committer
        self.clock = clock
        self.new_uuid = ids

    async def load(self, stream_id: UUID, kind: type[E], up_to: int | None = None) -> list[E]:
        """The stream's events of `kind` (up to version `up_to`), read off the event loop."""
        stored = await asyncio.to_thread(self.store.load, stream_id, up_to)
        return [event for event in stored if isinstance(event, kind)]

    async def load_many(self, stream_ids: Collection[UUID], kind: type[E]) -> dict[UUID, list[E]]:
        if not stream_ids:  # a push of signals without external ids: nothing to read, no thread hop
            return {}
        stored = await asyncio.to_thread(self.store.load_many, stream_ids)
        loaded: dict[UUID, list[E]] = {}
        for stream_id, events in stored.items():
            loaded[stream_id] = [event for event in events if isinstance(event, kind)]
        return {stream_id: events for stream_id, events in loaded.items() if events}

    async def run(self, caller: Caller, decide: Decide, *, expected_version: int | None = None,
                  attempts: int = MAX_ATTEMPTS) -> Result:
        """Decide and append, again on a fresh load when another writer got in first (at most `attempts` times).

        `expected_version` (If-Match) must be the own stream's version when loaded, and still be when appended:
        otherwise StaleVersion (412), never a retry."""
        step = caller.claim.next_step() if caller.claim is not None else None
        if step is not None and step[1] is not None:
            return await self._replayed(msgspec.convert(step[1], _Step))
        for _ in range(attempts):
            decision = await decide(Context(self, caller.meta(self.clock())))
            if expected_version is not None and expected_version != decision.loaded_version:
                raise StaleVersion(expected_version, decision.loaded_version)
            try:
                return await self._append(caller, decision, None if step is None else step[0])
            except ConcurrencyConflict:
                if expected_version is not None:
                    raise StaleVersion(expected_version, decision.loaded_version + 1) from None
        raise ConcurrencyConflict("changed concurrently; retry")

    async def _append(self, caller: Caller, decision: Decision, step: int | None) -> Result:
        own = tuple(event for event in decision.events if event.originator_id == decision.stream_id)
        stream = (*decision.history, *own)
        version = stream[-1].originator_version if stream else 0
        created = bool(own) and not decision.history
        record = None
        if step is not None and decision.events and caller.claim is not None:
            record = caller.claim.record(step, _step_encoder.encode(_Step(
                decision.stream_id, version, 0, created, decision.revealed)))
        future = self.committer.submit(decision.events, record)
        positions = await asyncio.wrap_future(future)
        return Result(stream_id=decision.stream_id, version=version, position=max(positions, default=0),
                      created=created, revealed=decision.revealed, stream=stream)

    async def _replayed(self, step: _Step) -> Result:
        stream = await self.load(step.stream_id, DomainEvent, up_to=step.version)
        return Result(stream_id=step.stream_id, version=step.version, position=step.position, created=step.created,
                      revealed=step.revealed, stream=tuple(stream))


def run_blocking(store: EventStore, caller: Caller, decide: Decide, *, clock: Callable[[], datetime] = utc_now
                 ) -> Result:
    """One command for a synchronous caller (the operator CLI, test fixtures): the same runner, on a committer and
    an event loop of its own, on a thread of its own so that it works whether or not the caller runs a loop."""
    async def run() -> Result:
        committer = GroupCommitter(store)
        try:
            return await CommandRunner(store, committer, clock=clock).run(caller, decide)
        finally:
            committer.close()

    with ThreadPoolExecutor(1, thread_name_prefix="command") as thread:
        return thread.submit(asyncio.run, run()).result()
