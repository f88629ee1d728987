"""Operator commands: pipeline status, and rebuilding a read model beside the live one."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import re
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import msgspec
import psycopg

from adapters import codec
from adapters.event_store import EventStore
from adapters.postgres import WRITER_ROLE, AsyncConn, connect, grant_roles
from adapters.settings import Settings
from projections import checkpoints, dead_letters
from projections.dead_letters import Unapplied
from projections.registry import PROJECTIONS, Projection, Stages
from projections.schema import schema_sql
from projections.status import PipelineStatus, pipeline_status

PAGE = 5000


def projections_status(settings: Settings) -> str:
    status = asyncio.run(_status(settings))
    lines = [f"event store head: {status.head}", f"relay: position {status.relay_position}, "
             f"lag {status.relay_lag_events} events" + _refusal(status),
             f"{'projection':<18} {'version':>7} {'position':>10} {'lag':>8} {'lag_s':>8} {'parked':>7} {'foreign':>7}"]
    lines += [f"{p.name:<18} {p.version:>7} {p.position:>10} {p.lag_events:>8} {p.lag_seconds:>8.2f} {p.parked:>7}"
              f" {p.foreign:>7}" for p in status.projections]
    if any(p.foreign for p in status.projections):
        lines.append(f"{max(p.foreign for p in status.projections)} message(s) parked as foreign: NATS stream "
                     f"{settings.nats_stream} carries messages that are not this event store's events; "
                     "see docs/operations.md, \"A stream shared by two stores\"")
    return "\n".join(lines)


def relay_status(settings: Settings) -> str:
    status = asyncio.run(_status(settings))
    return (f"head {status.head}, relay position {status.relay_position}, lag {status.relay_lag_events} events"
            + _refusal(status))


def _refusal(status: PipelineStatus) -> str:
    return "" if status.relay_refused is None else f"\nrelay REFUSES to publish: {status.relay_refused}"


async def _status(settings: Settings) -> PipelineStatus:
    conn = await connect(settings, autocommit=True)
    async with conn:
        return await pipeline_status(conn)


def rebuild(settings: Settings, name: str) -> str:
    """Replay the event store into fresh tables beside the live ones, then swap them in atomically."""
    if name not in PROJECTIONS:
        raise SystemExit(f"unknown projection {name!r}; known: {', '.join(PROJECTIONS)}")
    started = time.perf_counter()
    events, position, parked = asyncio.run(rebuild_projection(settings, PROJECTIONS[name]))
    elapsed = time.perf_counter() - started
    report = (f"rebuilt {name}: {events} events up to position {position} in {elapsed:.1f}s "
              f"({events / elapsed if elapsed else 0:,.0f} events/s)")
    if parked:
        report += (f"; parked {parked} event{'s' if parked > 1 else ''} it could not apply "
                   f"(`causeloop projections retry {name}` once fixed)")
    return report


def shadow_schema(settings: Settings, projection: Projection) -> str:
    return f"{settings.database_schema}__rb_{projection.name}"[:63]


async def rebuild_projection(settings: Settings, projection: Projection) -> tuple[int, int, int]:
    """Resumable: progress is a checkpoint of its own, so a crashed rebuild continues where it stopped.

    Returns (events read, position reached, events parked). An event the read model cannot apply is parked, like
    the live projector does, and the rebuild goes on.
    """
    shadow = shadow_schema(settings, projection)
    progress_name = f"{projection.name}__rebuild"
    conn = await connect(settings)
    lock = await conn.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS ok", (f"{shadow}:rebuild",))
    if not (await lock.fetchone() or {}).get("ok"):
        await conn.close()
        raise SystemExit(f"a rebuild of {projection.name} is already running")
    await conn.commit()
    _create_shadow(settings, projection, shadow)
    store = EventStore(settings, pool_size=2)
    applied = 0
    try:
        while True:
            if projection.stages is not None:  # until the end, or up to a page it cannot write whole
                applied += await _overlapped_pages(settings, store, projection, projection.stages, shadow, conn,
                                                   progress_name)
            async with conn.transaction():
                position = await checkpoints.lock(conn, progress_name)
                count, position = await _apply_page(conn, store, projection, shadow, position, settings,
                                                    progress_name)
                await checkpoints.advance(conn, settings.database_schema, progress_name, position, 0)
            applied += count
            if count == 0:
                break
        await asyncio.to_thread(_build_indexes, settings, projection, shadow)
        async with conn.transaction():
            count, parked = await _switch(conn, store, projection, shadow, settings, progress_name)
        return applied + count, await checkpoints.position(conn, projection.name), parked
    finally:
        await conn.close()
        store.close()


async def _overlapped_pages(settings: Settings, store: EventStore, projection: Projection, stages: Stages,
                            shadow: str, conn: AsyncConn, progress_name: str) -> int:
    """Read page N+2 and prepare page N+1 (each on a thread) while Postgres writes page N; returns the events
    written.

    The rows a page needs come from the previous page's prepared rows when it touched them (its write
    may still be in flight), else from the shadow tables, where every older page is already committed.
    Stops before the first page that cannot be prepared or written whole: `_apply_page` isolates what fails
    in it, then the caller comes back here.
    """
    reader = await connect(msgspec.structs.replace(settings, database_schema=shadow), autocommit=True)
    await reader.execute(f"SET role {WRITER_ROLE}")
    position = await checkpoints.position(conn, progress_name)
    await conn.commit()
    cache: dict[Any, Any] = {}
    pending: asyncio.Task[int] | None = None
    applied = 0
    next_page = asyncio.create_task(_read_page(store, projection, position))
    try:
        while True:
            page = await next_page
            if not page.read:
                break
            next_page = asyncio.create_task(_read_page(store, projection, page.last))
            keys = stages.keys_of(page.batch)
            missing = keys - cache.keys()
            views = {**(await stages.load(reader, missing) if missing else {}),
                     **{key: cache[key] for key in keys & cache.keys()}}
            prepared = await asyncio.to_thread(stages.prepare, views, page.batch)
            if pending is not None:
                applied += await pending
            cache = prepared.views
            pending = asyncio.create_task(_write_page(conn, stages, prepared, page, shadow, settings, progress_name))
        if pending is not None:
            applied += await pending
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise
    except Exception:
        if pending is not None:  # let the write in flight land (or fail) before anything else uses `conn`
            with contextlib.suppress(Exception):
                applied += await pending
    finally:
        next_page.cancel()  # a read ahead that nobody will use (or whose failure a raised error already explains)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await next_page
        await reader.close()
    return applied


async def _write_page(conn: AsyncConn, stages: Stages, prepared: Any, page: Page, shadow: str, settings: Settings,
                      progress_name: str) -> int:
    async with conn.transaction():
        # A page's rows and the progress checkpoint commit together, so a page lost to a crash right after its
        # commit is simply written again on resume: no need to wait for the WAL flush of each one.
        await conn.execute("SET LOCAL synchronous_commit TO off")
        async with _writing_into(conn, shadow, settings):
            await stages.write(conn, prepared)
        await checkpoints.lock(conn, progress_name)
        for unreadable in page.unreadable:
            await dead_letters.park(conn, progress_name, unreadable)
        await checkpoints.advance(conn, settings.database_schema, progress_name, page.last, 0)
    return page.read


async def _apply_page(conn: AsyncConn, store: EventStore, projection: Projection, shadow: str, position: int,
                      settings: Settings, progress_name: str) -> tuple[int, int]:
    """Fold the next page of stored events into the shadow tables, parking (as `progress_name`) each event that
    cannot be applied; returns (events read, new position)."""
    page = await _read_page(store, projection, position)
    if page.read:
        async with _writing_into(conn, shadow, settings):
            failed = await _apply_isolating(conn, projection, page.batch)
        for unapplied in [*page.unreadable, *(_unapplied(settings, at, event, error) for at, event, error in failed)]:
            await dead_letters.park(conn, progress_name, unapplied)
    return page.read, page.last


async def _apply_isolating(conn: AsyncConn, projection: Projection,
                           batch: Sequence[tuple[int, codec.AnyEvent]]) -> list[tuple[int, codec.AnyEvent, str]]:
    """Apply `batch` in order inside the caller's transaction, leaving out each event that fails on its own:
    a failing run is halved (each half in a savepoint) until the culprits stand alone. Returns them with their
    errors. A database outage is no fault of an event: it is raised."""
    if not batch:
        return []
    try:
        async with conn.transaction():
            await projection.project(conn, batch)
        return []
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise
    except Exception as exc:
        if len(batch) == 1:
            return [(batch[0][0], batch[0][1], repr(exc))]
    half = len(batch) // 2
    return [*await _apply_isolating(conn, projection, batch[:half]),
            *await _apply_isolating(conn, projection, batch[half:])]


def _unapplied(settings: Settings, position: int, event: codec.AnyEvent, error: str) -> Unapplied:
    return Unapplied(position=position, payload=codec.encode(event), error=error,
                     subject=codec.subject_for(settings.subject_prefix, event))


class Page(NamedTuple):
    read: int
    """Events read, of every category."""
    last: int
    batch: list[tuple[int, codec.AnyEvent]]
    """The ones this projection consumes."""
    unreadable: list[Unapplied]
    """The ones the codec cannot decode (whatever their category: it is unknown)."""


async def _read_page(store: EventStore, projection: Projection, position: int) -> Page:
    """The next page after `position`."""
    return await asyncio.to_thread(_read_and_decode, store, projection, position)


def _read_and_decode(store: EventStore, projection: Projection, position: int) -> Page:
    page = store.read_raw(position, PAGE)
    batch: list[tuple[int, codec.AnyEvent]] = []
    unreadable: list[Unapplied] = []
    for pos, state in page:
        try:
            event = codec.decode(state)
        except Exception as exc:
            unreadable.append(Unapplied(position=pos, payload=state, error=repr(exc)))
            continue
        if type(event).category in projection.categories:
            batch.append((pos, event))
    return Page(len(page), page[-1][0] if page else position, batch, unreadable)


@asynccontextmanager
async def _writing_into(conn: AsyncConn, shadow: str, settings: Settings) -> AsyncIterator[None]:
    """Inside the caller's transaction: write the shadow tables as the projector role, then switch back."""
    await conn.execute(f'SET LOCAL search_path TO "{shadow}"')
    await conn.execute(f"SET LOCAL role {WRITER_ROLE}")
    yield
    await conn.execute("RESET role")
    await conn.execute(f'SET LOCAL search_path TO "{settings.database_schema}"')


async def _switch(conn: AsyncConn, store: EventStore, projection: Projection, shadow: str, settings: Settings,
                  progress_name: str) -> tuple[int, int]:
    """Under the live checkpoint's row lock (the live projector waits), catch up to the head and swap tables (and
    the parked messages); returns (events read, events parked by the rebuild)."""
    live_position = await checkpoints.lock(conn, projection.name)
    position = await checkpoints.lock(conn, progress_name)
    applied = 0
    while True:
        count, position = await _apply_page(conn, store, projection, shadow, position, settings, progress_name)
        applied += count
        if count == 0:
            break
    main = settings.database_schema
    for table in projection.tables:
        await conn.execute(f'DROP TABLE IF EXISTS "{main}"."{table}"')
        await conn.execute(f'ALTER TABLE "{shadow}"."{table}" SET SCHEMA "{main}"')
    # The moved tables' triggers still call the shadow's functions, which DROP SCHEMA … CASCADE would take
    # with them (and the triggers too): re-running the idempotent schema file binds them to the live ones.
    await conn.execute(f'SET LOCAL search_path TO "{main}"')
    await conn.execute(schema_sql(projection).encode())
    await conn.execute("DELETE FROM projection_checkpoints WHERE name = %s", (progress_name,))
    if projection.guards_standing:
        await checkpoints.announce_standing(conn, main, {"*"})  # every cached standing may rest on old rows
    await checkpoints.advance(conn, main, projection.name, max(position, live_position), 0)
    parked = await dead_letters.take_over(conn, projection.name, progress_name)
    await conn.execute(f'DROP SCHEMA "{shadow}" CASCADE')
    return applied, parked


def _create_shadow(settings: Settings, projection: Projection, shadow: str) -> None:
    """Fresh tables with only their primary keys: secondary indexes (GIN included) are built once at the end."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{shadow}"')
        conn.execute(f'SET search_path TO "{shadow}", "{settings.database_schema}"')  # shared SQL routines
        conn.execute(schema_sql(projection).encode())
        grant_roles(conn, shadow)
        indexes = conn.execute(
            "SELECT i.indexname FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname"
            " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = i.schemaname"
            " WHERE i.schemaname = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)",
            (shadow,)).fetchall()
        for (index,) in indexes:
            conn.execute(f'DROP INDEX "{shadow}"."{index}"')


INDEX_BUILDERS = 2
_CREATE_INDEX = re.compile(r"^CREATE INDEX IF NOT EXISTS [^;]+;", re.MULTILINE)


def _build_indexes(settings: Settings, projection: Projection, shadow: str) -> None:
    """Build the shadow tables' secondary indexes, two at a time on their own connections (GIN first: it builds on
    one core, while B-tree builds can take parallel workers), then re-run the schema file for the rest."""
    text = schema_sql(projection)
    pending = queue.SimpleQueue[str]()
    for statement in sorted(_CREATE_INDEX.findall(text), key=lambda found: "USING gin" not in found):
        pending.put(statement)

    def build() -> None:
        with _maintenance_connection(settings, shadow) as conn:
            while True:
                try:
                    statement = pending.get_nowait()
                except queue.Empty:
                    return
                conn.execute(statement.encode())

    with ThreadPoolExecutor(INDEX_BUILDERS) as pool:
        for future in [pool.submit(build) for _ in range(INDEX_BUILDERS)]:
            future.result()
    with _maintenance_connection(settings, shadow) as conn:
        conn.execute(text.encode())
        conn.execute(f'ANALYZE "{shadow}".{projection.tables[0]}')


def _maintenance_connection(settings: Settings, shadow: str) -> psycopg.Connection[tuple[Any, ...]]:
    """Each index builder's session: 256 MB of maintenance memory apiece (two builders: 512 MB at most)."""
    conn = psycopg.connect(settings.database_url, autocommit=True)
    try:
        conn.execute(f'SET search_path TO "{shadow}", "{settings.database_schema}"')  # shared SQL routines
        conn.execute("SET maintenance_work_mem = '256MB'")
    except BaseException:
        conn.close()
        raise
    return conn


