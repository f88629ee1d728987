"""One statement per batch and table: `INSERT … SELECT FROM unnest(arrays)`, the projectors' shared write shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Columns = Sequence[tuple[str, str]]
"""(column, Postgres type) in write order."""


def bulk_insert(table: str, columns: Columns, conflict: str = "", select_as: Mapping[str, str] | None = None) -> str:
    """The statement taking one array per column (a batch's rows, column by column) instead of one per row.

    Binary parameters (%b): psycopg's text-format array dumper escapes every element with regexes. jsonb travels
    as text[] and is cast per element, or computed by `select_as` (column -> SQL expression over the column)."""
    computed = select_as or {}
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"%b::{'text' if kind == 'jsonb' else kind}[]" for _, kind in columns)
    selects = ", ".join(computed.get(name, f"{name}::jsonb") if kind == "jsonb" else name for name, kind in columns)
    return f"INSERT INTO {table} ({names}) SELECT {selects} FROM unnest({arrays}) AS u({names}) {conflict}".rstrip()


def upsert_newer(table: str, columns: Columns) -> str:
    """`bulk_insert` of rows keyed by (workspace_id, id) — the first two columns — that replace a stored row only
    when their `version` is higher (a redelivered batch changes nothing)."""
    assert [name for name, _ in columns[:2]] == ["workspace_id", "id"]
    updates = ", ".join(f"{name} = excluded.{name}" for name, _ in columns[2:])
    return bulk_insert(table, columns, f"ON CONFLICT (workspace_id, id) DO UPDATE SET {updates} "
                                       f"WHERE {table}.version < excluded.version")
