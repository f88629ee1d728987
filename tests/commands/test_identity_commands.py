"""Identity commands against the Postgres event store: keyed streams make slugs and emails unique."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence

import pytest

from adapters.event_store import EventStore, Outcome
from adapters.settings import Settings
from commands.identity import EnsureMembership, IdentityCommands, Membership, workspace_stream
from domain.events import DomainEvent
from domain.identity.events import MemberAdded, WorkspaceProvisioned
from domain.identity.roles import Role
from tests.builders import ALICE

pytestmark = pytest.mark.postgres


class RacingStore:
    """Lets a rival run its command between our load and our append, as a concurrent writer would."""

    def __init__(self, store: EventStore, rival: Callable[[], Membership]) -> None:
        self._store = store
        self._rival: Callable[[], Membership] | None = rival

    def load(self, stream_id: uuid.UUID, up_to: int | None = None) -> list[DomainEvent]:
        return list(self._store.load(stream_id, up_to))

    def append(self, events: Sequence[DomainEvent], outcomes: Sequence[Outcome] = ()) -> list[int]:
        if self._rival is not None:
            rival, self._rival = self._rival, None
            rival()
        return self._store.append(events, outcomes)


@pytest.fixture
def store(settings: Settings) -> Iterator[EventStore]:
    store = EventStore(settings, pool_size=2)
    yield store
    store.close()


def ensure(email: str, slug: str, role: Role = Role.OWNER) -> EnsureMembership:
    return EnsureMembership(email=email, workspace_slug=slug, role=role)


def test_the_same_membership_ensured_concurrently_provisions_the_workspace_once(store: EventStore) -> None:
    cmd = ensure(f"{uuid.uuid4().hex[:8]}@example.com", f"race-{uuid.uuid4().hex[:8]}")
    rival = IdentityCommands(store, actor=ALICE)
    racing = RacingStore(store, lambda: rival.ensure_membership(cmd))

    ours = IdentityCommands(racing, actor=ALICE).ensure_membership(cmd)  # type: ignore[arg-type]

    assert ours == rival.ensure_membership(cmd)
    assert [type(e) for e in store.load(workspace_stream(cmd.workspace_slug))] == [WorkspaceProvisioned, MemberAdded]


def test_when_two_users_provision_one_workspace_at_once_the_second_joins_it(store: EventStore) -> None:
    slug = f"race-{uuid.uuid4().hex[:8]}"
    first = ensure(f"first-{slug}@example.com", slug)
    second = ensure(f"second-{slug}@example.com", slug, Role.VIEWER)
    rival = IdentityCommands(store, actor=ALICE)
    racing = RacingStore(store, lambda: rival.ensure_membership(first))

    joined = IdentityCommands(racing, actor=ALICE).ensure_membership(second)  # type: ignore[arg-type]

    events = store.load(workspace_stream(slug))
    owner = next(e for e in events if isinstance(e, WorkspaceProvisioned)).owner_user_id
    members = [(e.user_id, e.role) for e in events if isinstance(e, MemberAdded)]
    assert owner != joined.user_id
    assert members == [(owner, Role.OWNER), (joined.user_id, Role.VIEWER)]
