"""Writes the `issues` read model: folds a batch of events into rows, activity and comments in one go."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from adapters.codec import AnyEvent, to_public
from domain.ids import render
from domain.issues.events import IssueCommented, IssueEvent
from projections.issues.view import SEVERITY_RANK, IssueView, apply

NAME = "issues"
VERSION = 1
CATEGORIES = frozenset({"issue"})
TABLES = ("issues", "issue_activity", "issue_comments", "issue_counts")

_COLUMNS = (
    "workspace_id", "id", "version", "title", "body", "status", "stage", "severity", "severity_rank", "source",
    "external_id", "team", "assignee_id", "external_url", "metadata", "pattern_id", "risk_score", "analysis",
    "source_created_at", "created_at", "updated_at", "resolved_at", "comment_count",
)
_UPSERT = (
    f"INSERT INTO issues ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "
    "ON CONFLICT (workspace_id, id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[2:])
    + " WHERE issues.version < excluded.version"
)
_INSERT_ACTIVITY = (
    "INSERT INTO issue_activity (workspace_id, issue_id, version, position, id, type, actor, occurred_at, data) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_ADD_COUNTS = (
    "INSERT INTO issue_counts (workspace_id, status, severity, stage, n) VALUES (%s, %s, %s, %s, %s) "
    "ON CONFLICT (workspace_id, status, severity, stage) DO UPDATE SET n = issue_counts.n + excluded.n"
)
_INSERT_COMMENT = (
    "INSERT INTO issue_comments (workspace_id, id, issue_id, author, body, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)

Conn = AsyncConnection[dict[str, Any]]


def handles(event: AnyEvent) -> bool:
    return isinstance(event, IssueEvent)


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Apply `batch` (in position order, already past the checkpoint) inside the caller's transaction."""
    events = [(position, event) for position, event in batch if isinstance(event, IssueEvent)]
    if not events:
        return
    views = await _load(conn, {(e.workspace_id, render("iss", e.originator_id)) for _, e in events})
    changed: dict[tuple[str, str], IssueView] = {}
    counts: Counter[tuple[str, str, str, str]] = Counter()
    activity, comments = [], []
    for position, event in events:
        key = (event.workspace_id, render("iss", event.originator_id))
        before = views.get(key)
        after = apply(before, event)
        if after is None or after is before:
            continue
        if before is not None:
            counts[_count_key(before)] -= 1
        counts[_count_key(after)] += 1
        views[key] = changed[key] = after
        activity.append(_activity_row(key[1], position, event))
        if isinstance(event, IssueCommented):
            comments.append((event.workspace_id, event.comment_id, key[1], Jsonb(msgspec.to_builtins(event.actor)),
                             event.body, event.occurred_at))
    async with conn.cursor() as cur:
        if changed:
            await cur.executemany(_UPSERT, [_row(view) for view in changed.values()])
        if activity:
            await cur.executemany(_INSERT_ACTIVITY, activity)
        if comments:
            await cur.executemany(_INSERT_COMMENT, comments)
        deltas = [(*key, n) for key, n in sorted(counts.items()) if n]
        if deltas:
            await cur.executemany(_ADD_COUNTS, deltas)


def _count_key(view: IssueView) -> tuple[str, str, str, str]:
    return view.workspace_id, view.status.value, view.severity.value, view.stage.value


VIEW_COLUMNS = ", ".join(IssueView.__struct_fields__)


async def _load(conn: Conn, keys: set[tuple[str, str]]) -> dict[tuple[str, str], IssueView]:
    workspaces, ids = zip(*keys, strict=True)
    cur = await conn.execute(
        f"SELECT {VIEW_COLUMNS} FROM issues WHERE (workspace_id, id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        (list(workspaces), list(ids)))
    rows = await cur.fetchall()
    return {(str(row["workspace_id"]), str(row["id"])): from_row(row) for row in rows}


def from_row(row: dict[str, Any]) -> IssueView:
    return msgspec.convert(row, IssueView, strict=False)


def _row(view: IssueView) -> tuple[object, ...]:
    values = msgspec.structs.asdict(view)
    values["severity_rank"] = SEVERITY_RANK[view.severity]
    values["metadata"] = Jsonb(view.metadata)
    values["analysis"] = None if view.analysis is None else Jsonb(msgspec.to_builtins(view.analysis))
    values["status"] = view.status.value
    values["stage"] = view.stage.value
    values["severity"] = view.severity.value
    return tuple(values[column] for column in _COLUMNS)


def _activity_row(issue_id: str, position: int, event: IssueEvent) -> tuple[object, ...]:
    public = to_public(event, position)
    return (event.workspace_id, issue_id, event.originator_version, position, public.id, public.type,
            Jsonb(msgspec.to_builtins(event.actor)), event.occurred_at, Jsonb(public.data))
