"""A failed writer transaction leaves its connection as good as new, whatever psycopg had prepared on it."""

from __future__ import annotations

import pytest

from adapters.postgres import create_pool, writer_transaction
from adapters.settings import Settings

pytestmark = [pytest.mark.postgres]

BAD = "nul \x00 inside"  # Postgres text cannot hold NUL: the parameter is refused when the statement is bound


async def test_a_pipeline_that_fails_while_psycopg_prepares_spoils_no_later_transaction(settings: Settings) -> None:
    pool = create_pool(settings, min_size=1, max_size=1)
    await pool.open()
    outcomes: list[str] = []
    try:
        # The sixth execution of each statement is where psycopg prepares it; here it lands on a failed pipeline,
        # whose second statement the server then skips.
        for value in ["ok", BAD, "ok", BAD, "ok", BAD, "ok", "ok", "ok"]:
            try:
                async with writer_transaction(pool) as conn, conn.pipeline():
                    await conn.execute("SELECT unnest(%b::text[]) AS first", [[value]])
                    await conn.execute("SELECT array_length(%b::text[], 1) AS second", [[value]])
                outcomes.append("committed")
            except Exception as exc:
                outcomes.append(type(exc).__name__)
    finally:
        await pool.close()
    assert outcomes == ["committed", "CharacterNotInRepertoire"] * 3 + ["committed"] * 3
