"""Group commit: concurrent commands share transactions, and a conflicting command fails alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from adapters.event_store import EventStore, Outcome
from adapters.ids import new_uuid
from adapters.settings import Settings
from commands.group_commit import ConcurrencyConflict, GroupCommitter
from domain.events import DomainEvent
from domain.issues.issue import open_issue
from tests.builders import meta

pytestmark = pytest.mark.postgres


class CountingStore(EventStore):
    """Counts transactions; the first append waits on a gate so that others pile up behind it."""

    def __init__(self, settings: Settings, gate: threading.Event) -> None:
        super().__init__(settings, pool_size=2)
        self.transactions = 0
        self._gate = gate

    def append(self, events: Sequence[DomainEvent], outcomes: Sequence[Outcome] = ()) -> list[int]:
        self._gate.wait(10)
        self.transactions += 1
        return super().append(events, outcomes)


@pytest.fixture
def gated(settings: Settings) -> Iterator[tuple[CountingStore, GroupCommitter, threading.Event]]:
    gate = threading.Event()
    store = CountingStore(settings, gate)
    committer = GroupCommitter(store)
    yield store, committer, gate
    gate.set()
    committer.close()
    store.close()


def test_commands_queued_together_commit_in_one_transaction(
        gated: tuple[CountingStore, GroupCommitter, threading.Event]) -> None:
    store, committer, gate = gated
    first = committer.submit([open_issue(issue_id=new_uuid(), meta=meta(), title="first")])
    rest = [committer.submit([open_issue(issue_id=new_uuid(), meta=meta(), title=f"n{i}")]) for i in range(20)]

    gate.set()
    positions = [future.result(10) for future in [first, *rest]]

    assert store.transactions <= 2  # at most: the first alone (already being written), then the 20 others together
    flat = [p for batch in positions for p in batch]
    assert flat == sorted(flat) and len(set(flat)) == 21


def test_a_conflicting_command_fails_alone_and_the_rest_of_its_batch_commits(
        gated: tuple[CountingStore, GroupCommitter, threading.Event]) -> None:
    store, committer, gate = gated
    stream = new_uuid()
    blocker = committer.submit([open_issue(issue_id=new_uuid(), meta=meta(), title="blocker")])
    winner = committer.submit([open_issue(issue_id=stream, meta=meta(), title="winner")])
    loser = committer.submit([open_issue(issue_id=stream, meta=meta(), title="loser: same stream, same version")])
    bystander = committer.submit([open_issue(issue_id=new_uuid(), meta=meta(), title="bystander")])

    gate.set()

    assert blocker.result(10) and winner.result(10) and bystander.result(10)
    with pytest.raises(ConcurrencyConflict):
        loser.result(10)
    assert [e.title for e in store.load(stream)] == ["winner"]  # type: ignore[union-attr]
