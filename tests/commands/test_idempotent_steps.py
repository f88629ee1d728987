"""Idempotency steps on Postgres: a command's result commits in the same transaction as its events, and only while
its request still holds the claim (a retry that took the claim over fences the original out)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from adapters import idempotency
from adapters.event_store import EventStore
from adapters.idempotency import Claim, ClaimLost, KeyScope
from adapters.postgres import AsyncConn, create_pool
from adapters.settings import Settings
from commands.caller import Caller
from commands.group_commit import GroupCommitter
from commands.issues import IssueCommands, OpenIssue
from commands.runner import CommandRunner
from domain.issues.events import IssueEvent
from tests.builders import ALICE, WS
from tests.workers.pipeline import isolated

pytestmark = pytest.mark.postgres
SCOPE = KeyScope(WS, ALICE.id, "key-1", "/v1/issues")


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[Settings, CommandRunner, AsyncConnectionPool[AsyncConn]]]:
    with isolated(settings) as own:
        store = EventStore(own, pool_size=2)
        committer = GroupCommitter(store)
        pool = create_pool(own, name="test-idempotency", autocommit=True)
        await pool.open()
        try:
            yield own, CommandRunner(store, committer), pool
        finally:
            await pool.close()
            committer.close()
            store.close()


def row(settings: Settings) -> dict[str, Any]:
    with psycopg.connect(settings.database_url, autocommit=True, row_factory=dict_row) as conn:
        found = conn.execute(f'SELECT * FROM "{settings.database_schema}".idempotency_keys').fetchone()
    assert found is not None
    return found


async def test_a_step_commits_its_result_with_its_events_and_a_retry_gets_it(
        world: tuple[Settings, CommandRunner, AsyncConnectionPool[AsyncConn]]) -> None:
    own, runner, pool = world
    first = await idempotency.claim(pool, SCOPE, "hash")
    assert isinstance(first, Claim)

    result = await IssueCommands(runner).open_issue(OpenIssue(title="once"), Caller(workspace_id=WS, actor=ALICE,
                                                                                     claim=first))
    # The process dies here, before any response is stored.
    retry = await idempotency.claim(pool, SCOPE, "hash")

    assert row(own)["steps"]["0"]["position"] == result.position
    assert isinstance(retry, Claim) and retry.claim_id != first.claim_id
    replayed = await IssueCommands(runner).open_issue(OpenIssue(title="once"), Caller(workspace_id=WS, actor=ALICE,
                                                                                       claim=retry))
    assert replayed == result
    assert await runner.load(result.stream_id, IssueEvent) == list(result.stream)


async def test_a_request_whose_claim_was_taken_over_commits_nothing_and_its_batch_neighbours_commit(
        world: tuple[Settings, CommandRunner, AsyncConnectionPool[AsyncConn]]) -> None:
    own, runner, pool = world
    original = await idempotency.claim(pool, SCOPE, "hash")
    assert isinstance(original, Claim)
    with psycopg.connect(own.database_url, autocommit=True) as conn:  # the original looks abandoned
        conn.execute(f'UPDATE "{own.database_schema}".idempotency_keys SET claimed_at = now() - interval \'1 hour\'')
    retry = await idempotency.claim(pool, SCOPE, "hash")
    assert isinstance(retry, Claim) and retry.committed == {}
    commands = IssueCommands(runner)

    late, neighbour = await asyncio.gather(
        commands.open_issue(OpenIssue(title="late"), Caller(workspace_id=WS, actor=ALICE, claim=original)),
        commands.open_issue(OpenIssue(title="neighbour"), Caller(workspace_id=WS, actor=ALICE)),
        return_exceptions=True)

    assert isinstance(late, ClaimLost)
    assert not isinstance(neighbour, BaseException) and neighbour.position > 0
    assert row(own)["steps"] == {}
    with psycopg.connect(own.database_url, autocommit=True) as conn:
        titles = conn.execute(f'SELECT state FROM "{own.database_schema}".causeloop_events').fetchall()
    assert len(titles) == 1


async def test_a_concurrent_duplicate_is_told_to_retry_later_and_a_different_body_is_refused(
        world: tuple[Settings, CommandRunner, AsyncConnectionPool[AsyncConn]]) -> None:
    _, _, pool = world
    assert isinstance(await idempotency.claim(pool, SCOPE, "hash"), Claim)

    assert await idempotency.claim(pool, SCOPE, "hash") == "in_progress"
    assert await idempotency.claim(pool, SCOPE, "other") == "reused"
