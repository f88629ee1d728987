"""Postgres plumbing for the read side: pools, tenant-scoped transactions and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, LiteralString, NamedTuple

import msgspec
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps
from psycopg_pool import AsyncConnectionPool

from adapters.event_store import EventStore
from adapters.settings import Settings

log = logging.getLogger(__name__)

READER_ROLE = "causeloop_reader"
WRITER_ROLE = "causeloop_writer"

AsyncConn = psycopg.AsyncConnection[dict[str, object]]


def conninfo(settings: Settings) -> str:
    return settings.database_url


def connect_kwargs(settings: Settings, *, custom_plans: bool = False) -> dict[str, object]:
    """Every connection works inside the deployment's schema (one schema per test run).

    `custom_plans`: plan every execution of a prepared statement with its parameters. For connections that live
    while their tables grow from empty (projectors): a generic plan cached early (a hash join over a sequential
    scan, right for an empty table) is kept until an ANALYZE invalidates it, and a keyed read of ten rows then
    scans every row (docs/decisions/016-projectors-plan-each-statement.md)."""
    options = f"-c search_path={settings.database_schema}"
    if custom_plans:
        options += " -c plan_cache_mode=force_custom_plan"
    return {"options": options, "row_factory": dict_row, "autocommit": False}


async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """JSONB parameters are dumped by msgspec: several times faster than the json module on the projector path."""
    set_json_dumps(msgspec.json.encode, conn)


def create_pool(settings: Settings, *, min_size: int = 1, max_size: int | None = None,
                name: str = "causeloop", autocommit: bool = False, custom_plans: bool = False,
                flush_commits: bool = True) -> AsyncConnectionPool[AsyncConn]:
    """A pool whose sessions show `name` as their application_name (pg_stat_activity tells the workers apart).

    `flush_commits=False`: commits answer before their WAL is flushed (`synchronous_commit off`). Only for writes
    that a database crash may lose because they are derived and redone from their checkpoint, which is lost with
    them (the read-model projectors: docs/decisions/017-projector-commits-do-not-wait-for-the-wal-flush.md)."""
    kwargs = {**connect_kwargs(settings, custom_plans=custom_plans), "autocommit": autocommit,
              "application_name": name}
    if not flush_commits:
        kwargs["options"] = f"{kwargs['options']} -c synchronous_commit=off"
    return AsyncConnectionPool(
        conninfo(settings), min_size=min_size, max_size=max_size or settings.db_pool_size,
        kwargs=kwargs, open=False, name=name, configure=configure,
    )


async def connect(settings: Settings, *, autocommit: bool = False) -> AsyncConn:
    conn = await psycopg.AsyncConnection.connect(
        conninfo(settings), options=f"-c search_path={settings.database_schema}",
        row_factory=dict_row, autocommit=autocommit,
    )
    await configure(conn)
    return conn


async def listen_forever(settings: Settings, handlers: Mapping[str, Callable[[str], None]], *,
                         on_listening: Callable[[], Awaitable[None]] | None = None,
                         on_lost: Callable[[], None] | None = None, retry_s: float = 0.5) -> None:
    """LISTEN on each channel of `handlers` on ONE connection of its own, calling the channel's handler with each
    NOTIFY's payload; reconnects until cancelled. One connection keeps one order: the NOTIFYs of a transaction,
    and transactions in commit order, are handled in the order they were sent, whatever their channels.

    `on_listening` runs each time the LISTENs are in place (to catch up on what a gap may have hidden),
    `on_lost` each time the connection drops.
    """
    while True:
        try:
            conn = await connect(settings, autocommit=True)
            async with conn:
                for channel in handlers:
                    await conn.execute(f'LISTEN "{channel}"')
                if on_listening is not None:
                    await on_listening()
                async for notify in conn.notifies():
                    handlers[notify.channel](notify.payload)
        except psycopg.Error as exc:
            log.warning("listener on %s lost its connection: %s", ", ".join(handlers), exc)
            if on_lost is not None:
                on_lost()
            await asyncio.sleep(retry_s)


_BEGIN_TENANT = ("BEGIN READ ONLY; "
                 "SELECT set_config('role', %s, true), set_config('causeloop.workspace_id', %s, true)")


class Statement(NamedTuple):
    """One SQL statement with `%s` placeholders, and its values. psycopg binds them client-side (a ClientCursor
    quotes each value as a literal), so several statements can travel as one simple-protocol message; the text
    is built only from the code's own fragments, never from input."""

    text: str
    params: tuple[object, ...] = ()


def _tenant_cursor(conn: AsyncConn) -> psycopg.AsyncClientCursor[dict[str, Any]]:
    return psycopg.AsyncClientCursor(conn, row_factory=dict_row)


@asynccontextmanager
async def tenant_transaction(pool: AsyncConnectionPool[AsyncConn], workspace_id: str) -> AsyncIterator[AsyncConn]:
    """A read-only transaction that sees only `workspace_id`'s rows: Row-Level Security as a non-BYPASSRLS role.

    BEGIN and the tenant settings travel as one simple-protocol message, so the transaction costs one round
    trip to open and one to commit. (psycopg's pipeline mode with prepared statements saves Postgres CPU but
    costs the API more than that on these short reads: see docs/decisions/ and bench/README.md.)
    """
    async with pool.connection() as conn, _manual_transaction(conn):
        await _tenant_cursor(conn).execute(_BEGIN_TENANT, (READER_ROLE, workspace_id), prepare=False)
        yield conn


async def tenant_read(pool: AsyncConnectionPool[AsyncConn], workspace_id: str,
                      statements: Sequence[Statement]) -> list[list[dict[str, Any]]]:
    """The rows of each statement read as the tenant in ONE round trip: BEGIN, the tenant settings, the
    statements and COMMIT go as one simple-protocol message. For the hottest reads: binding values
    client-side costs a small fraction of composing the same script with `psycopg.sql`."""
    script = "; ".join([_BEGIN_TENANT, *(statement.text for statement in statements), "COMMIT"])
    params = [READER_ROLE, workspace_id, *(value for statement in statements for value in statement.params)]
    async with pool.connection() as conn, _manual_transaction(conn):
        cur = _tenant_cursor(conn)
        # Unique text every time (the values are in it): nothing for psycopg to count towards preparing.
        await cur.execute(script.encode(), params, prepare=False)
        cur.nextset()  # past BEGIN's empty result, onto set_config's
        results: list[list[dict[str, Any]]] = []
        for _ in statements:
            cur.nextset()
            results.append(await cur.fetchall())
        return results


async def call_definer(pool: AsyncConnectionPool[AsyncConn], statement: LiteralString,
                       params: Sequence[object]) -> dict[str, Any] | None:
    """The first row of a SECURITY DEFINER function's call, in autocommit: one round trip, and a statement
    psycopg prepares once per connection. For per-request checks that span workspaces' RLS by design."""
    async with pool.connection() as conn, _manual_transaction(conn):
        cur = await conn.execute(statement, params)
        return await cur.fetchone()


@asynccontextmanager
async def _manual_transaction(conn: AsyncConn) -> AsyncIterator[None]:
    """Autocommit for the checkout, so BEGIN/COMMIT are ours to send (and to batch); ends in a clean state.

    A failure rolls back with `conn.rollback()`, never a "ROLLBACK" query: psycopg counts a statement as prepared
    as soon as it queues its Parse in a pipeline, and when an earlier statement of that pipeline fails the server
    skips the Parse, so the connection would name a statement that does not exist ("_pg3_…") from then on.
    `rollback()` forgets every prepared statement on both sides (DEALLOCATE ALL); a ROLLBACK sent as a query
    does that only the first time psycopg sees its text on the connection.
    """
    await conn.set_autocommit(True)
    try:
        try:
            yield
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                await conn.rollback()
            raise
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.execute("COMMIT")
    finally:
        with contextlib.suppress(psycopg.Error):
            await conn.set_autocommit(False)


_BEGIN_WRITER = f"BEGIN; SELECT set_config('role', '{WRITER_ROLE}', true)".encode()


@asynccontextmanager
async def writer_transaction(pool: AsyncConnectionPool[AsyncConn]) -> AsyncIterator[AsyncConn]:
    """A transaction as the projector role, whose RLS policy admits every workspace. BEGIN and the role go as one
    message (a projector batch runs many short transactions; each round trip counts)."""
    async with pool.connection() as conn, _manual_transaction(conn):
        await conn.execute(_BEGIN_WRITER, prepare=False)
        yield conn


CORE_SQL = ("adapters/001_core.sql", resources.files("adapters.sql").joinpath("001_core.sql").read_text())


def migrate(settings: Settings, read_models: Sequence[tuple[str, str]]) -> None:
    """Create the schema, roles, event store table, the shared tables, then each (name, sql) of `read_models` (the
    projection registry's: projections/schema.py); safe to run from many processes at once."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('causeloop-migrate'))")
        try:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"')
            _ensure_roles(conn)
            EventStore(settings, create_table=True, pool_size=1).close()
            conn.execute(f'SET search_path TO "{settings.database_schema}"')
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, sha text NOT NULL,"
                         " applied_at timestamptz NOT NULL DEFAULT now())")
            for name, sql in [CORE_SQL, *read_models]:
                _apply(conn, name, sql)
            grant_roles(conn, settings.database_schema)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('causeloop-migrate'))")


def _apply(conn: psycopg.Connection[tuple[object, ...]], name: str, sql: str) -> None:
    sha = hashlib.sha256(sql.encode()).hexdigest()
    row = conn.execute("SELECT sha FROM schema_migrations WHERE name = %s", (name,)).fetchone()
    if row is not None and row[0] == sha:
        return
    with conn.transaction():
        conn.execute(sql.encode())
        conn.execute("INSERT INTO schema_migrations (name, sha) VALUES (%s, %s) "
                     "ON CONFLICT (name) DO UPDATE SET sha = excluded.sha, applied_at = now()", (name, sha))


def _ensure_roles(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    for role in (READER_ROLE, WRITER_ROLE):
        with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            conn.execute(f"CREATE ROLE {role} NOLOGIN NOBYPASSRLS")
        with contextlib.suppress(psycopg.errors.Error):  # already a member, or a superuser who needs no grant
            conn.execute(f"GRANT {role} TO CURRENT_USER")


def grant_roles(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> None:
    """Readers may only SELECT (RLS narrows it to one workspace); the projector role writes."""
    conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {READER_ROLE}, {WRITER_ROLE}')
    conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {READER_ROLE}')
    conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {WRITER_ROLE}')
    conn.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {WRITER_ROLE}')
