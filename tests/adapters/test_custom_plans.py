"""Projector connections plan each statement with its parameters: a plan cached while a table was empty never
outlives the table's growth (docs/decisions/016-projectors-plan-each-statement.md)."""

from __future__ import annotations

import pytest

from adapters.postgres import create_pool
from adapters.settings import Settings

pytestmark = [pytest.mark.postgres]

KEYED = ("SELECT t.title FROM unnest($1::text[], $2::text[]) AS k(workspace_id, id)"
         " JOIN keyed t ON t.workspace_id = k.workspace_id AND t.id = k.id")


async def _plan_after_growth(settings: Settings, *, custom_plans: bool) -> str:
    """Prepare a keyed read on an empty table, run it as often as psycopg's auto-prepare does, fill the table
    (no ANALYZE, as between autovacuum runs), and answer the plan the next execution uses."""
    pool = create_pool(settings, min_size=1, max_size=1, autocommit=True, custom_plans=custom_plans)
    await pool.open()
    try:
        async with pool.connection() as conn:
            await conn.execute("DROP TABLE IF EXISTS keyed")
            await conn.execute(
                "CREATE TABLE keyed (workspace_id text, id text, title text, PRIMARY KEY (workspace_id, id))")
            await conn.execute(f"PREPARE keyed_read(text[], text[]) AS {KEYED}")
            for _ in range(8):
                await conn.execute("EXECUTE keyed_read('{a,b}', '{1,2}')")
            await conn.execute("INSERT INTO keyed SELECT 'w', g::text, 'x' FROM generate_series(1, 50000) g")
            cur = await conn.execute("EXPLAIN EXECUTE keyed_read('{w,w}', '{5,7}')")
            plan = "\n".join(str(next(iter(row.values()))) for row in await cur.fetchall())
            await conn.execute("DROP TABLE keyed")
            return plan
    finally:
        await pool.close()


async def test_a_projector_connection_reads_keyed_rows_by_index_after_the_table_grew(settings: Settings) -> None:
    assert "Index Scan" in await _plan_after_growth(settings, custom_plans=True)


async def test_a_plan_cached_on_the_empty_table_would_scan_every_row(settings: Settings) -> None:
    """The trap itself, so the test above cannot pass for another reason."""
    assert "Seq Scan" in await _plan_after_growth(settings, custom_plans=False)
