"""Synthetic data: a vocabulary of made-up words, the bench's tenants and tokens, and issue event streams.

Words are synthetic consonant-vowel tokens so that no word is an English stop word (the search column
uses the `english` configuration) and each one's frequency is known: every title has one of COMMON
words (so each matches ~10% of issues) and the other title and body words are uniform over the rest
of the vocabulary (each matches ~0.8% of issues with the default sizes).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from adapters.event_store import EventStore
from adapters.ids import new_uuid
from adapters.settings import Settings
from adapters.tokens import mint_access_token
from commands.identity import EnsureMembership, IdentityCommands
from domain.events import Actor, ActorKind, Meta
from domain.identity.roles import Role, scopes_for
from domain.ids import UserId, WorkspaceId
from domain.issues import issue as decide
from domain.issues.events import IssueEvent, Severity, Status

VOCABULARY_SIZE = 2000
COMMON = 10
TITLE_WORDS = 5
BODY_WORDS = 12

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"

SEVERITY_WEIGHTS: dict[str, int] = {Severity.CRITICAL: 5, Severity.HIGH: 20, Severity.MEDIUM: 45, Severity.LOW: 30}
# Final status of seeded issues: open ones are a single IssueOpened, the others get one more event.
STATUS_WEIGHTS: dict[str, int] = {Status.OPEN: 70, Status.IN_PROGRESS: 10, Status.RESOLVED: 10, Status.CLOSED: 10}


def vocabulary(size: int = VOCABULARY_SIZE, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        word = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(3))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def write_words(path: Path, words: list[str]) -> Path:
    path.write_text("\n".join(words) + "\n")
    return path


@dataclass(frozen=True)
class Tenant:
    """A workspace, a user in it and an owner token for the API."""

    workspace_id: str
    user_id: str
    token: str


def tenant(settings: Settings) -> Tenant:
    """A real workspace and owner (events, then the `identity` projection), so the token passes the
    per-request membership check; the relay and projectors must be running."""
    slug = f"bench-{uuid.uuid4().hex[:10]}"
    store = EventStore(settings, pool_size=1)
    try:
        membership = IdentityCommands(store, actor=Actor(kind=ActorKind.SYSTEM, id="bench")).ensure_membership(
            EnsureMembership(email=f"owner@{slug}.example.test", workspace_slug=slug, role=Role.OWNER))
    finally:
        store.close()
    _wait_for_membership(settings, membership.workspace_id, membership.user_id)
    token = mint_access_token(settings, subject=membership.user_id, workspace_id=membership.workspace_id,
                              role=Role.OWNER.value, scopes=scopes_for(Role.OWNER))
    return Tenant(workspace_id=membership.workspace_id, user_id=membership.user_id, token=token)


def _wait_for_membership(settings: Settings, workspace_id: str, user_id: str, timeout: float = 60) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        deadline = time.monotonic() + timeout
        while conn.execute("SELECT 1 FROM memberships WHERE workspace_id = %s AND user_id = %s",
                           (workspace_id, user_id)).fetchone() is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the identity projection never had the bench tenant's membership")
            time.sleep(0.05)


def _weighted(weights: Mapping[str, int]) -> list[str]:
    return [key for key, weight in weights.items() for _ in range(weight)]


class IssueFactory:
    """Builds issue streams with the domain's own decision functions (so events are valid as stored)."""

    def __init__(self, workspace_id: str, user_id: str, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary()
        self.common = self.words[:COMMON]
        self.rest = self.words[COMMON:]
        self.actor = Actor(kind=ActorKind.USER, id=user_id)
        self.workspace_id = WorkspaceId(workspace_id)
        self.user_id = UserId(user_id)
        self.severities = _weighted(SEVERITY_WEIGHTS)
        self.statuses = _weighted(STATUS_WEIGHTS)

    def _meta(self, now: datetime) -> Meta:
        return Meta(workspace_id=self.workspace_id, actor=self.actor, now=now)

    def title(self) -> str:
        return " ".join([self.rng.choice(self.common), *(self.rng.choice(self.rest) for _ in range(TITLE_WORDS - 1))])

    def body(self) -> str:
        return " ".join(self.rng.choice(self.rest) for _ in range(BODY_WORDS))

    def opened(self, now: datetime) -> IssueEvent:
        return decide.open_issue(issue_id=new_uuid(), meta=self._meta(now), title=self.title(), body=self.body(),
                                 severity=Severity(self.rng.choice(self.severities)), source="bench")

    def stream(self, now: datetime) -> list[IssueEvent]:
        """IssueOpened, then maybe a status change an hour later."""
        first = self.opened(now)
        status = Status(self.rng.choice(self.statuses))
        if status == Status.OPEN:
            return [first]
        issue = decide.project_issue(None, [first])  # type: ignore[list-item]
        assert issue is not None
        return [first, *decide.change_status(issue, status, self._meta(now + timedelta(hours=1)))]

    def history(self, issues: int, batch: int, span: timedelta = timedelta(days=90)) -> Iterator[list[IssueEvent]]:
        """`issues` streams in batches of `batch` issues, created across `span` up to now."""
        start = datetime.now(UTC) - span
        step = span / max(1, issues)
        events: list[IssueEvent] = []
        for i in range(issues):
            events.extend(self.stream(start + step * i))
            if (i + 1) % batch == 0:
                yield events
                events = []
        if events:
            yield events
