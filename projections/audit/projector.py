"""Writes the `audit` read model: every event of every category becomes one hash-chained entry of its workspace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters.codec import EVENT_TYPES, AnyEvent
from adapters.ids import event_id
from domain.events import DomainEvent
from domain.ids import render
from projections.audit.actions import describe
from projections.audit.chain import GENESIS, Entry, entry_hash
from projections.bulk_insert import bulk_insert

NAME = "audit"
VERSION = 1
# Every category the codec knows when this module is imported, so event types added later are audited too.
CATEGORIES = frozenset(cls.category for cls in EVENT_TYPES.values())
TABLES = ("audit_log",)

_COLUMNS = (
    ("workspace_id", "text"), ("id", "text"), ("seq", "bigint"), ("position", "bigint"),
    ("occurred_at", "timestamptz"), ("actor", "jsonb"), ("action", "text"), ("category", "text"),
    ("target_type", "text"), ("target_id", "text"), ("metadata", "jsonb"), ("ip", "text"),
    ("prev_hash", "text"), ("hash", "text"),
)
# No ON CONFLICT: the checkpoint lock makes every event arrive once, so a clash is a bug to surface, not skip.
_INSERT = bulk_insert("audit_log", _COLUMNS)
_json = msgspec.json.Encoder()

Conn = AsyncConnection[dict[str, Any]]


class Head(msgspec.Struct, frozen=True):
    """The last entry of a workspace's chain: the next one gets `seq + 1` and links to `hash`."""

    seq: int
    hash: str


Views = dict[str, Head]


class Prepared(msgspec.Struct, frozen=True):
    views: Views
    statements: list[tuple[str, list[list[object]]]]


def keys_of(batch: Sequence[tuple[int, AnyEvent]]) -> set[str]:
    return {event.workspace_id for _, event in batch if type(event).category in CATEGORIES}


async def load(conn: Conn, keys: set[str]) -> Views:
    """The head of each workspace's chain: one backward primary-key scan per workspace."""
    cur = await conn.execute(
        "SELECT w AS workspace_id, h.seq, h.hash FROM unnest(%b::text[]) AS w, LATERAL ("
        "SELECT seq, hash FROM audit_log WHERE workspace_id = w ORDER BY seq DESC LIMIT 1) h", (sorted(keys),))
    return {str(row["workspace_id"]): Head(int(row["seq"]), str(row["hash"])) for row in await cur.fetchall()}


def entry_of(position: int, seq: int, event: DomainEvent) -> Entry:
    """Pure: the audit entry an event becomes at `seq` of its workspace's chain."""
    described = describe(event)
    return Entry(
        workspace_id=event.workspace_id, id=render("aud", event_id(event.originator_id, event.originator_version)),
        seq=seq, position=position, occurred_at=event.occurred_at,
        actor=msgspec.to_builtins(event.actor), action=described.action, category=described.category,
        target_type=described.target_type, target_id=described.target_id, metadata=described.metadata,
        ip=event.client_ip)


def prepare(views: Views, batch: Sequence[tuple[int, AnyEvent]]) -> Prepared:
    """Pure: chain the batch's entries onto the heads in `views`, in position order."""
    heads = dict(views)
    changed: Views = {}
    rows: list[tuple[object, ...]] = []
    for position, event in batch:
        if type(event).category not in CATEGORIES:
            continue
        head = heads.get(event.workspace_id, Head(0, GENESIS))
        entry = entry_of(position, head.seq + 1, event)
        digest = entry_hash(head.hash, entry)
        heads[entry.workspace_id] = changed[entry.workspace_id] = Head(entry.seq, digest)
        rows.append((entry.workspace_id, entry.id, entry.seq, entry.position, entry.occurred_at,
                     _json.encode(entry.actor).decode(), entry.action, entry.category, entry.target_type,
                     entry.target_id, _json.encode(entry.metadata).decode(), entry.ip, head.hash, digest))
    statements = [(_INSERT, [list(column) for column in zip(*rows, strict=True)])] if rows else []
    return Prepared(views=changed, statements=statements)


async def write(conn: Conn, prepared: Prepared) -> None:
    for statement, arrays in prepared.statements:
        await conn.execute(statement, arrays)


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Apply `batch` (in position order, already past the checkpoint) inside the caller's transaction."""
    keys = keys_of(batch)
    if keys:
        await write(conn, prepare(await load(conn, keys), batch))
