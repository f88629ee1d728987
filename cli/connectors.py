"""Operator commands for connectors: queue a sync and list runs, following a running one with a progress line."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from typing import Any, TextIO

import msgspec
import psycopg
from psycopg.rows import dict_row

from adapters.event_store import EventStore
from adapters.secret_box import SecretBox, master_key
from adapters.settings import Settings
from cli.token import UsageError
from commands.caller import Caller
from commands.connectors import BOX_PURPOSE, ConnectorCommands, run_id_of
from commands.group_commit import GroupCommitter
from commands.runner import CommandRunner
from domain.connectors.events import RunKind
from domain.events import Actor, ActorKind
from domain.ids import WorkspaceId, canonical
from projections.connectors.view import ConnectorView, SyncRunView

OPERATOR = Actor(kind=ActorKind.SYSTEM, id="operator-cli")
_RUN_COLUMNS = ", ".join(SyncRunView.__struct_fields__)
_CONNECTOR_COLUMNS = ", ".join(ConnectorView.__struct_fields__)


def _conn(settings: Settings) -> psycopg.Connection[dict[str, Any]]:
    conn = psycopg.connect(settings.database_url, autocommit=True, row_factory=dict_row)
    conn.execute(f'SET search_path TO "{settings.database_schema}"')
    return conn


def find_connector(settings: Settings, connector_id: str) -> ConnectorView:
    public = canonical("con", connector_id)
    with _conn(settings) as conn:
        row = None if public is None else conn.execute(
            f"SELECT {_CONNECTOR_COLUMNS} FROM connectors WHERE id = %s AND NOT deleted", (public,)).fetchone()
    if row is None:
        raise UsageError(f"no connector {connector_id}")
    return msgspec.convert(row, ConnectorView, strict=False)


def queue_sync(settings: Settings, connector_id: str, *, backfill_days: int | None) -> str:
    """Queue a manual run (or a backfill) as the operator; the run's id."""
    found = find_connector(settings, connector_id)
    caller = Caller(workspace_id=WorkspaceId(found.workspace_id), actor=OPERATOR, correlation_id="operator-cli")
    kind = RunKind.BACKFILL if backfill_days else RunKind.MANUAL

    async def queue() -> str:
        store = EventStore(settings, pool_size=1)
        committer = GroupCommitter(store)
        try:
            commands = ConnectorCommands(CommandRunner(store, committer),
                                         lambda: SecretBox(master_key(settings), BOX_PURPOSE))
            return run_id_of(await commands.queue_run(caller, found.id, kind, backfill_days=backfill_days))
        finally:
            committer.close()
            store.close()

    return asyncio.run(queue())


def runs(settings: Settings, connector_id: str, limit: int) -> list[SyncRunView]:
    found = find_connector(settings, connector_id)
    with _conn(settings) as conn:
        rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM sync_runs WHERE workspace_id = %s AND connector_id = %s "
                            "ORDER BY queued_at DESC, id DESC LIMIT %s", (found.workspace_id, found.id, limit))
        return [msgspec.convert(row, SyncRunView, strict=False) for row in rows.fetchall()]


def run_of(settings: Settings, run_id: str) -> SyncRunView | None:
    with _conn(settings) as conn:
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM sync_runs WHERE id = %s", (run_id,)).fetchone()
    return None if row is None else msgspec.convert(row, SyncRunView, strict=False)


def table(rows: list[SyncRunView]) -> str:
    header = f"{'RUN':32} {'KIND':9} {'STATUS':9} {'STARTED':20} {'SECS':>7} {'SEEN':>7} {'NEW':>7} {'UPD':>7} ERROR"
    lines = [header]
    for run in rows:
        lines.append(f"{run.id:32} {run.kind.value:9} {run.status.value:9} {_when(run.started_at):20} "
                     f"{_seconds(run):>7} {run.records_seen:>7} {run.issues_created:>7} {run.issues_updated:>7} "
                     f"{run.error or ''}")
    return "\n".join(lines)


def progress_line(run: SyncRunView, now: datetime) -> str:
    elapsed = ((run.finished_at or now) - run.started_at).total_seconds() if run.started_at else 0.0
    rate = run.records_seen / elapsed if elapsed > 0 else 0.0
    return (f"{run.id} {run.kind.value} {run.status.value}: {run.records_seen} fetched, {run.issues_created} new, "
            f"{run.issues_updated} updated, {run.issues_unchanged} unchanged, {run.issues_failed} failed "
            f"in {elapsed:.0f}s ({rate:.0f}/s)")


def follow(settings: Settings, run_id: str, out: TextIO | None = None, interval: float = 0.5,
           timeout: float | None = None) -> SyncRunView | None:
    """Redraw one progress line until the run finishes (the read model is polled: the CLI has no waiter). On a
    terminal the line is redrawn in place; otherwise each change is a line of its own."""
    out = out or sys.stdout
    deadline = None if timeout is None else time.monotonic() + timeout
    tty = out.isatty()
    last = ""
    while True:
        run = run_of(settings, run_id)
        if run is not None:
            line = progress_line(run, datetime.now(run.queued_at.tzinfo))
            if line != last:
                out.write(("\r\x1b[2K" if tty else "") + line + ("" if tty else "\n"))
                out.flush()
                last = line
            if run.status.value in ("succeeded", "failed"):
                if tty:
                    out.write("\n")
                return run
        if deadline is not None and time.monotonic() >= deadline:
            if tty:
                out.write("\n")
            return run
        time.sleep(interval)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _seconds(run: SyncRunView) -> str:
    if run.started_at is None or run.finished_at is None:
        return "-"
    return f"{(run.finished_at - run.started_at).total_seconds():.1f}"
