"""Response bodies of the audit log (api.md section B "Audit, notifications, governance"; docs-facts §14.7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from projections.audit.queries import AuditRow


class AuditActor(msgspec.Struct, kw_only=True):
    kind: str
    id: str
    name: str | None
    """The user's current name from the identity read model (not stored in the entry); null when unknown."""


class AuditTarget(msgspec.Struct, kw_only=True):
    type: str
    id: str | None


class AuditEntry(msgspec.Struct, kw_only=True):
    """One immutable entry; `hash` = sha256(prev_hash + canonical JSON of the entry), see GET /v1/audit-log/verify."""

    id: str
    seq: int
    occurred_at: datetime
    actor: AuditActor
    action: str
    category: str
    target: AuditTarget
    metadata: dict[str, Any]
    ip: str | None
    prev_hash: str
    hash: str


class ChainVerdict(msgspec.Struct, kw_only=True):
    """`ok` when every stored entry's hash recomputes and links to the one before; `broken_at` is the first bad seq.
    `complete` is false while an event of the workspace is parked instead of chained: the stored chain can be
    intact (`ok`) and still miss it."""

    ok: bool
    entries: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str | None
    broken_at: int | None
    complete: bool
    """False while `parked_positions` is not empty: the chain lacks those events."""
    parked_positions: list[int]
    """Event-store positions of the workspace's events the audit projection parked (at most 100, oldest first);
    `causeloop projections retry audit` appends them, a rebuild puts them in order."""


def entry_of(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id, seq=row.seq, occurred_at=row.occurred_at,
        actor=AuditActor(kind=str(row.actor.get("kind", "")), id=str(row.actor.get("id", "")), name=row.actor_name),
        action=row.action, category=row.category, target=AuditTarget(type=row.target_type, id=row.target_id),
        metadata=row.metadata, ip=row.ip, prev_hash=row.prev_hash, hash=row.hash)
