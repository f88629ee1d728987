"""The `audit` projection on Postgres + JetStream: one chained entry per stored event, and a rebuild that
reproduces the live table byte for byte (hashes included) without losing its immutability guard."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from adapters.postgres import WRITER_ROLE, connect
from adapters.settings import Settings
from commands.issues import OpenIssue
from projections.audit.queries import verify_chain
from tests.workers.pipeline import (
    caller,
    isolated,
    issue_commands,
    running,
    stored_positions,
    wait_for_projection,
    write_history,
)
from workers.operations import rebuild

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
WS_A, WS_B = "ws_01KV1PX3NQ3B497SHK7JTNT525", "ws_01KV1PX3NQ3B497SHK7JTNT999"
COLUMNS = ("workspace_id, id, seq, position, occurred_at, actor, action, category, target_type, target_id, metadata,"
           " ip, prev_hash, hash")


def audit_rows(settings: Settings) -> list[dict[str, Any]]:
    with psycopg.connect(settings.database_url, row_factory=dict_row,
                         options=f"-c search_path={settings.database_schema}") as conn:
        return list(conn.execute(f"SELECT {COLUMNS} FROM audit_log ORDER BY position"))


async def verdicts(settings: Settings) -> dict[str, bool]:
    conn = await connect(settings)
    async with conn:
        return {ws: (await verify_chain(conn, ws)).ok for ws in (WS_A, WS_B)}


async def test_every_stored_event_becomes_one_entry_chained_per_workspace(settings: Settings) -> None:
    with isolated(settings) as s:
        await asyncio.to_thread(write_history, s, 4, WS_A)
        head = await asyncio.to_thread(write_history, s, 3, WS_B)
        async with running(s, projections=("audit",)):
            await wait_for_projection(s, head, name="audit")

        rows = audit_rows(s)
        assert [row["position"] for row in rows] == stored_positions(s)
        for ws in (WS_A, WS_B):
            assert [r["seq"] for r in rows if r["workspace_id"] == ws] == list(
                range(1, 1 + sum(r["workspace_id"] == ws for r in rows)))
        assert await verdicts(s) == {WS_A: True, WS_B: True}


async def test_a_rebuild_reproduces_the_live_audit_log_and_keeps_it_immutable(settings: Settings) -> None:
    with isolated(settings) as s:
        await asyncio.to_thread(write_history, s, 10, WS_A)
        head = await asyncio.to_thread(write_history, s, 5, WS_B)
        async with running(s, projections=("audit",)):
            await wait_for_projection(s, head, name="audit")
            live = audit_rows(s)

            await asyncio.to_thread(rebuild, s, "audit")
            rebuilt = audit_rows(s)

            with issue_commands(s) as (_, commands):
                accepted = await commands.open_issue(OpenIssue(title="after rebuild"), caller(WS_A))
            await wait_for_projection(s, accepted.position, name="audit")

        assert rebuilt == live
        after = audit_rows(s)
        assert after[-1]["seq"] == max(r["seq"] for r in live if r["workspace_id"] == WS_A) + 1
        assert await verdicts(s) == {WS_A: True, WS_B: True}
        with psycopg.connect(s.database_url, options=f"-c search_path={s.database_schema}") as conn:
            conn.execute(f"SET role {WRITER_ROLE}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM audit_log")
