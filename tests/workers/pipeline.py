"""Test harness for the write → relay → JetStream → projector pipeline, on a fresh schema and stream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import nats
import psycopg
from psycopg.rows import dict_row

from adapters import codec
from adapters.event_store import EventStore
from adapters.nats import STORE_HEADER
from adapters.settings import Settings
from commands.caller import Caller
from commands.group_commit import GroupCommitter
from commands.issues import IssueCommands, OpenIssue, issue_id_of
from commands.runner import CommandRunner
from domain.events import Actor, ActorKind, DomainEvent
from domain.ids import WorkspaceId
from projections.issues.projector import from_row
from projections.issues.view import IssueView, document, fold
from projections.position_waiter import PositionWaiter
from projections.registry import PROJECTIONS
from projections.schema import migrate
from workers.projector_runner import run_projectors
from workers.relay import run_relay


def fresh_settings(base: Settings) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    return msgspec.structs.replace(base, database_schema=f"{base.database_schema}_{suffix}",
                                   nats_stream=f"{base.nats_stream}_{suffix}",
                                   subject_prefix=f"{base.subject_prefix}_{suffix}")


@contextlib.contextmanager
def isolated(base: Settings) -> Iterator[Settings]:
    """A schema and a stream of its own, removed afterwards."""
    settings = fresh_settings(base)
    migrate(settings)
    try:
        yield settings
    finally:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE')
            for name in PROJECTIONS:
                conn.execute(f'DROP SCHEMA IF EXISTS "{settings.database_schema}__rb_{name}" CASCADE')
        with ThreadPoolExecutor(1) as pool:  # callable from sync and async tests alike
            pool.submit(asyncio.run, _delete_stream(settings)).result()


async def _delete_stream(settings: Settings) -> None:
    nc = await nats.connect(settings.nats_url)
    with contextlib.suppress(Exception):
        await nc.jetstream().delete_stream(settings.nats_stream)
    await nc.close()


def caller(workspace_id: str = "ws_01KV1PX3NQ3B497SHK7JTNT525") -> Caller:
    return Caller(workspace_id=WorkspaceId(workspace_id), actor=Actor(kind=ActorKind.USER, id="usr_test"))


@contextlib.contextmanager
def issue_commands(settings: Settings) -> Iterator[tuple[EventStore, IssueCommands]]:
    store = EventStore(settings, pool_size=8)
    committer = GroupCommitter(store)
    try:
        yield store, IssueCommands(CommandRunner(store, committer))
    finally:
        committer.close()
        store.close()


def write_history(settings: Settings, issues: int = 30, workspace_id: str = "ws_01KV1PX3NQ3B497SHK7JTNT525") -> int:
    """Opens, edits, comments and closes issues; returns the head position."""
    who = caller(workspace_id)

    async def write(commands: IssueCommands) -> None:
        for i in range(issues):
            accepted = await commands.open_issue(OpenIssue(title=f"Disk full on node {i}", body="df shows 100%"), who)
            if i % 2 == 0:
                await commands.comment_on_issue(issue_id_of(accepted), f"seen again {i}", who)
            if i % 3 == 0:
                await commands.close_issue(issue_id_of(accepted), who)

    with issue_commands(settings) as (store, commands):
        asyncio.run(write(commands))  # write_history runs on a thread of its own (asyncio.to_thread)
        return store.head()


@contextlib.asynccontextmanager
async def running(settings: Settings, *, relay: bool = True, projector: bool = True,
                  projections: tuple[str, ...] = ("issues",)) -> AsyncIterator[None]:
    stopping = asyncio.Event()
    tasks = []
    if relay:
        tasks.append(asyncio.create_task(run_relay(settings, stopping)))
    if projector:
        tasks.append(asyncio.create_task(run_projectors(settings, projections, stopping)))  # one runner, as deployed
    try:
        yield
    finally:
        stopping.set()
        await asyncio.gather(*tasks)


async def wait_for_projection(settings: Settings, position: int, timeout: float = 30.0,
                              name: str = "issues") -> None:
    waiter = PositionWaiter(settings)
    await waiter.start()
    try:
        assert await waiter.wait(name, position, timeout), f"projection {name} never reached {position}"
    finally:
        await waiter.stop()


def expected_views(settings: Settings) -> dict[str, IssueView]:
    """The oracle: every stream folded straight from the event store."""
    store = EventStore(settings, pool_size=1)
    try:
        streams: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for _, event in store.read(0, 10**9):
            streams[event.originator_id].append(event)
    finally:
        store.close()
    views = [fold(None, events) for events in streams.values()]
    return {view.id: view for view in views if view is not None}


def read_model(settings: Settings) -> tuple[dict[str, IssueView], list[tuple[Any, ...]], list[tuple[Any, ...]],
                                           dict[tuple[str, str, str, str], int]]:
    with psycopg.connect(settings.database_url, row_factory=dict_row,
                         options=f"-c search_path={settings.database_schema}") as conn:
        rows = conn.execute("SELECT * FROM issues").fetchall()
        views = {str(row["id"]): from_row(row) for row in rows}
        unrendered = [row["id"] for row in rows if row["doc"] != document(views[str(row["id"])])]
        assert not unrendered, f"stored documents that do not render their rows: {unrendered[:5]}"
        activity = [tuple(row.values()) for row in conn.execute(
            "SELECT issue_id, version, position, type FROM issue_activity ORDER BY position")]
        comments = [tuple(row.values()) for row in conn.execute(
            "SELECT id, issue_id, body FROM issue_comments ORDER BY id")]
        counts = {(r["workspace_id"], r["status"], r["severity"], r["stage"]): int(r["n"]) for r in conn.execute(
            "SELECT workspace_id, status, severity, stage, n FROM issue_counts WHERE n <> 0")}
    return views, activity, comments, counts


def expected_counts(views: dict[str, IssueView]) -> dict[tuple[str, str, str, str], int]:
    totals: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for view in views.values():
        totals[(view.workspace_id, view.status.value, view.severity.value, view.stage.value)] += 1
    return dict(totals)


def stored_positions(settings: Settings) -> list[int]:
    store = EventStore(settings, pool_size=1)
    try:
        return [position for position, _ in store.read_raw(0, 10**9)]
    finally:
        store.close()


def appended(settings: Settings, events: Sequence[DomainEvent]) -> int:
    """Append `events` in one transaction; the position of the last."""
    store = EventStore(settings, pool_size=1)
    try:
        return max(store.append(events))
    finally:
        store.close()


def store_of(settings: Settings) -> str:
    """The event store's id, which the relay stamps on every message."""
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}") as conn:
        row = conn.execute("SELECT store_id FROM store_identity").fetchone()
    assert row is not None
    return str(row[0])


async def publish_raw(settings: Settings, copies: int) -> None:
    """Put every stored event on the bus `copies` more times, with fresh msg ids so JetStream keeps them all."""
    store = EventStore(settings, pool_size=1)
    nc = await nats.connect(settings.nats_url)
    stamp = {STORE_HEADER: store_of(settings)}
    try:
        js = nc.jetstream()
        for position, state in store.read_raw(0, 10**9):
            event = codec.decode(state)
            for _ in range(copies):
                await js.publish(codec.subject_for(settings.subject_prefix, event),
                                 codec.encode_public(event, position),
                                 headers={"Nats-Msg-Id": uuid.uuid4().hex, **stamp})
    finally:
        await nc.close()
        store.close()


def assert_read_model_matches_the_event_store(settings: Settings) -> None:
    """Every row, count and activity entry is what folding the event store once gives: nothing lost, nothing twice."""
    views, activity, _, counts = read_model(settings)
    assert views == expected_views(settings)
    assert counts == expected_counts(views)
    assert [row[2] for row in activity] == stored_positions(settings)
