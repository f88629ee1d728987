"""Read-model commits do not wait for the WAL flush (docs/decisions/017): a database crash may lose the last ones,
each with its checkpoint, after their messages were acked. The crash also ends the projector's sessions, and the
projector then subscribes again from its checkpoints, so every lost event is projected again, exactly once."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.ids import new_uuid
from adapters.postgres import AsyncConn, create_pool
from adapters.settings import Settings
from domain.issues.issue import open_issue
from projections.issues.projector import TABLES
from projections.registry import PROJECTIONS
from tests.builders import meta
from tests.workers.pipeline import (
    appended,
    assert_read_model_matches_the_event_store,
    isolated,
    running,
    wait_for_projection,
    write_history,
)
from workers.projector_runner import ProjectorRunner

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


def lose_the_projectors_commits(settings: Settings) -> int:
    """What a crash does to commits not yet flushed: the read model and its checkpoint go back together (here all
    the way to empty), and every session of the projector ends. Answers how many sessions were ended."""
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}") as conn:
        for table in TABLES:
            conn.execute(f"DELETE FROM {table}")
        conn.execute("UPDATE projection_checkpoints SET position = 0, stream_seq = 0 WHERE name = 'issues'")
        conn.commit()
        ended = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE application_name = 'projector-issues'").fetchone()
    assert ended is not None
    return int(ended[0])


async def test_only_a_pool_asked_not_to_flush_commits_skips_the_wal_flush_and_each_names_itself(
        settings: Settings) -> None:
    async def setting_of(pool: AsyncConnectionPool[AsyncConn]) -> tuple[object, object]:
        async with pool, pool.connection() as conn:
            cur = await conn.execute("SELECT current_setting('synchronous_commit') AS s, "
                                     "current_setting('application_name') AS a")
            row = await cur.fetchone()
        assert row is not None
        return row["s"], row["a"]

    assert await setting_of(create_pool(settings, name="projector-x", flush_commits=False)) == ("off", "projector-x")
    assert await setting_of(create_pool(settings, name="api-read")) == ("on", "api-read")


async def test_commits_the_database_lost_are_projected_again_after_it_ends_the_projectors_sessions(
        settings: Settings) -> None:
    with isolated(settings) as s:
        head = await asyncio.to_thread(write_history, s, 12)
        async with running(s):
            await wait_for_projection(s, head)

            assert await asyncio.to_thread(lose_the_projectors_commits, s) >= 1
            later = await asyncio.to_thread(appended, s, [open_issue(issue_id=new_uuid(), meta=meta(), title="after")])
            await wait_for_projection(s, later)

        assert_read_model_matches_the_event_store(s)


async def test_a_batch_the_database_failed_ends_the_term_and_is_never_retried_on_a_fresh_session(
        settings: Settings) -> None:
    """A retry on a new session would apply the batch past a checkpoint the crash took back, skipping what it lost;
    only a new term, which reads the checkpoints again, may go on."""
    runner = ProjectorRunner(settings, [PROJECTIONS["issues"]], None, None)  # type: ignore[arg-type]
    attempts: list[int] = []

    async def commit(projections: object, batch: object) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise psycopg.OperationalError("terminating connection due to administrator command")

    runner.commit = commit  # type: ignore[method-assign]
    with pytest.raises(psycopg.OperationalError):
        await runner.handle([])

    assert attempts == [1]
