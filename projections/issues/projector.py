"""Writes the `issues` read model: folds a batch of events into rows, activity and comments in one go."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from adapters.ids import event_id
from domain.events import DomainEvent
from domain.ids import render
from domain.issues.events import IssueCommented, IssueEvent
from projections.bulk_insert import bulk_insert, upsert_newer
from projections.issues.view import SEVERITY_RANK, IssueView, apply, document
from projections.keyed_rows import rows_by_key

NAME = "issues"
VERSION = 2
CATEGORIES = frozenset({"issue"})
TABLES = ("issues", "issue_activity", "issue_comments", "issue_counts")

# (column, Postgres type) of the issues table in write order; batches are written as one
# INSERT … SELECT FROM unnest(arrays) per table: one statement per batch instead of one per row.
_ISSUE_COLUMNS = (
    ("workspace_id", "text"), ("id", "text"), ("version", "int"), ("title", "text"), ("body", "text"),
    ("status", "text"), ("stage", "text"), ("severity", "text"), ("severity_rank", "smallint"), ("source", "text"),
    ("external_id", "text"), ("team", "text"), ("assignee_id", "text"), ("external_url", "text"),
    ("metadata", "jsonb"), ("pattern_id", "text"), ("risk_score", "int"), ("analysis", "jsonb"),
    ("source_created_at", "timestamptz"), ("created_at", "timestamptz"), ("updated_at", "timestamptz"),
    ("resolved_at", "timestamptz"), ("comment_count", "int"), ("doc", "text"),
)
_ACTIVITY_COLUMNS = (
    ("workspace_id", "text"), ("issue_id", "text"), ("version", "int"), ("position", "bigint"), ("id", "uuid"),
    ("type", "text"), ("actor", "jsonb"), ("occurred_at", "timestamptz"), ("data", "jsonb"),
)
_COMMENT_COLUMNS = (
    ("workspace_id", "text"), ("id", "text"), ("issue_id", "text"), ("author", "jsonb"), ("body", "text"),
    ("created_at", "timestamptz"),
)
_COUNT_COLUMNS = (("workspace_id", "text"), ("status", "text"), ("severity", "text"), ("stage", "text"),
                  ("n", "bigint"))


# The activity `data` is the event's JSON (one msgspec encode) less its envelope, removed in SQL.
_ENVELOPE_KEYS = ", ".join(f"'{key}'" for key in ("type", *DomainEvent.__struct_fields__))
_SELECT_AS = {"data": f"data::jsonb - ARRAY[{_ENVELOPE_KEYS}]"}


_UPSERT = upsert_newer("issues", _ISSUE_COLUMNS)
_INSERT_ACTIVITY = bulk_insert("issue_activity", _ACTIVITY_COLUMNS, "ON CONFLICT DO NOTHING", _SELECT_AS)
_INSERT_COMMENT = bulk_insert("issue_comments", _COMMENT_COLUMNS, "ON CONFLICT DO NOTHING")
_ADD_COUNTS = bulk_insert("issue_counts", _COUNT_COLUMNS, "ON CONFLICT (workspace_id, status, severity, stage) "
                           "DO UPDATE SET n = issue_counts.n + excluded.n")
_DROP_EMPTY_COUNTS = ("DELETE FROM issue_counts WHERE n = 0 AND (workspace_id, status, severity, stage) IN "
                      "(SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]))")
"""A count that fell to zero is no row at all, as in a rebuild: the live table and a rebuilt one are identical
however the events were batched."""
_json = msgspec.json.Encoder()


Conn = AsyncConnection[dict[str, Any]]


Key = tuple[str, str]
Views = dict[Key, IssueView]


class Prepared(msgspec.Struct, frozen=True):
    """A batch folded in memory: the rows after it, and the statements (with their array parameters) to write."""

    views: Views
    statements: list[tuple[str, list[list[object]]]]


@functools.lru_cache(maxsize=65_536)
def issue_id_of(stream_id: UUID) -> str:
    """The public id of an issue stream, remembered: a batch renders each id several times, a rebuild millions."""
    return render("iss", stream_id)


def keys_of(batch: Sequence[tuple[int, AnyEvent]]) -> set[Key]:
    return {(event.workspace_id, issue_id_of(event.originator_id)) for _, event in batch
            if isinstance(event, IssueEvent)}


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Apply `batch` (in position order, already past the checkpoint) inside the caller's transaction."""
    keys = keys_of(batch)
    if keys:
        await write(conn, prepare(await load(conn, keys), batch))


def prepare(views: Views, batch: Sequence[tuple[int, AnyEvent]]) -> Prepared:
    """Pure: fold `batch` into copies of `views` (the rows before it) and build the bulk statements."""
    views = dict(views)
    changed: Views = {}
    counts: Counter[tuple[str, str, str, str]] = Counter()
    activity, comments = [], []
    for position, event in batch:
        if not isinstance(event, IssueEvent):
            continue
        issue_id = issue_id_of(event.originator_id)
        key = (event.workspace_id, issue_id)
        before = views.get(key)
        after = apply(before, event)
        if after is None or after is before:
            continue
        if before is not None:
            counts[_count_key(before)] -= 1
        counts[_count_key(after)] += 1
        views[key] = changed[key] = after
        activity.append(_activity_row(issue_id, position, event))
        if isinstance(event, IssueCommented):
            comments.append((event.workspace_id, event.comment_id, issue_id, _json.encode(event.actor).decode(),
                             event.body, event.occurred_at))
    deltas = [(*key, n) for key, n in sorted(counts.items()) if n]
    lowered = [key for key, n in sorted(counts.items()) if n < 0]
    statements = [(statement, [list(column) for column in zip(*rows, strict=True)])
                  for statement, rows in ((_UPSERT, [_row(view) for view in changed.values()]),
                                          (_INSERT_ACTIVITY, activity), (_INSERT_COMMENT, comments),
                                          (_ADD_COUNTS, deltas), (_DROP_EMPTY_COUNTS, lowered)) if rows]
    return Prepared(views={key: views[key] for key in changed}, statements=statements)


async def write(conn: Conn, prepared: Prepared) -> None:
    """Send every statement of the batch in one pipeline."""
    async with conn.pipeline():
        for statement, arrays in prepared.statements:
            await conn.execute(statement, arrays)


def _count_key(view: IssueView) -> tuple[str, str, str, str]:
    return view.workspace_id, view.status.value, view.severity.value, view.stage.value


async def load(conn: Conn, keys: set[Key]) -> Views:
    """The current rows of a batch's issues."""
    rows = await rows_by_key(conn, "issues", (*IssueView.__struct_fields__, "doc"), keys)
    return {(str(row["workspace_id"]), str(row["id"])): from_row(_exact_metadata(row)) for row in rows}


def _exact_metadata(row: dict[str, Any]) -> dict[str, Any]:
    """The metadata as the document holds it: jsonb keeps numbers as `numeric` (2e82 comes back as an integer of 83
    digits), so an issue's next event would re-render it unlike a rebuild, which folds the event's own values."""
    doc = row.pop("doc", None)
    if doc:
        row["metadata"] = msgspec.json.decode(doc)["metadata"]
    return row


def from_row(row: dict[str, Any]) -> IssueView:
    return msgspec.convert(row, IssueView, strict=False)


def _row(view: IssueView) -> tuple[object, ...]:
    values = msgspec.structs.asdict(view)
    values["severity_rank"] = SEVERITY_RANK[view.severity]
    values["metadata"] = _json.encode(view.metadata).decode()
    values["analysis"] = None if view.analysis is None else _json.encode(view.analysis).decode()
    values["status"] = view.status.value
    values["stage"] = view.stage.value
    values["severity"] = view.severity.value
    values["doc"] = document(view)
    return tuple(values[column] for column, _ in _ISSUE_COLUMNS)


def _activity_row(issue_id: str, position: int, event: IssueEvent) -> tuple[object, ...]:
    return (event.workspace_id, issue_id, event.originator_version, position,
            event_id(event.originator_id, event.originator_version), type(event).__name__,
            _json.encode(event.actor).decode(), event.occurred_at, _json.encode(event).decode())
