"""A batch's current rows, read back by primary key for a projector's fold."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import AsyncConnection


async def rows_by_key(conn: AsyncConnection[dict[str, Any]], table: str, fields: Sequence[str],
                      keys: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The `fields` of each row of `table` whose (workspace_id, id) is one of `keys`.

    The pairs are joined, so each is one primary-key lookup whatever the statistics say:
    `workspace_id = ANY(…) AND id = ANY(…)` let the planner, on a table without statistics yet, scan a
    workspace's rows filtered by the id list (0.1–0.8 s per batch of the issues projector).
    """
    ordered = sorted(keys)
    columns = ", ".join(f"{table}.{name}" for name in fields)
    cur = await conn.execute(
        f"SELECT {columns} FROM unnest(%b::text[], %b::text[]) AS k(workspace_id, id)"
        f" JOIN {table} ON {table}.workspace_id = k.workspace_id AND {table}.id = k.id",
        ([workspace for workspace, _ in ordered], [row_id for _, row_id in ordered]))
    return await cur.fetchall()
