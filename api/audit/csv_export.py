"""The audit log as CSV: a header row, then one row per entry, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

import msgspec

from projections.audit.queries import AuditRow

HEADER = ("id", "seq", "occurred_at", "actor_kind", "actor_id", "actor_name", "action", "category", "target_type",
          "target_id", "ip", "metadata", "prev_hash", "hash")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """Text a spreadsheet will not evaluate: a cell starting like a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _values(row: AuditRow) -> tuple[object, ...]:
    return (row.id, row.seq, row.occurred_at.isoformat().replace("+00:00", "Z"), row.actor.get("kind"),
            row.actor.get("id"), row.actor_name, row.action, row.category, row.target_type, row.target_id, row.ip,
            msgspec.json.encode(row.metadata).decode(), row.prev_hash, row.hash)


def lines(rows: Iterable[AuditRow], *, header: bool = False) -> str:
    """CSV text (RFC 4180 quoting, CRLF line ends) for `rows`, optionally preceded by the header row."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(HEADER)
    writer.writerows([cell(value) for value in _values(row)] for row in rows)
    return out.getvalue()
