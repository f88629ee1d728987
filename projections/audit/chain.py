"""The audit log's hash chain: canonical JSON of an entry and its SHA-256 link to the entry before it.

`hash = sha256_hex(prev_hash + canonical_json(entry))`, per workspace, starting from `GENESIS`. The
canonical form must come out byte-identical whether an entry is fresh from an event or read back from
Postgres, so it is defined over values that survive jsonb: object keys sorted, no whitespace, strings
escaped by one encoder, every number as a plain decimal (no exponent, no trailing zeros: jsonb keeps
`1e20` as `100000000000000000000`), timestamps as UTC ISO-8601 with microseconds.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

GENESIS = "0" * 64
ENTRY_FIELDS = ("workspace_id", "id", "seq", "position", "occurred_at", "actor", "action", "category",
                "target_type", "target_id", "metadata", "ip")

_strings = msgspec.json.Encoder()


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """The hashed fields of one audit entry, exactly as stored (the chain columns aside)."""

    workspace_id: str
    id: str
    seq: int
    position: int
    occurred_at: datetime
    actor: dict[str, Any]
    action: str
    category: str
    target_type: str
    target_id: str | None
    metadata: dict[str, Any]
    ip: str | None


def timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _number(value: int | float | Decimal) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "null"  # what msgspec writes for NaN/Infinity, so what jsonb ends up holding
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if number == 0:
        return "0"
    text = format(number.normalize(), "f")
    return text


def _canonical(value: Any) -> Iterator[str]:
    if value is None or value is True or value is False:
        yield "null" if value is None else ("true" if value else "false")
    elif isinstance(value, int | float | Decimal):
        yield _number(value)
    elif isinstance(value, str):
        yield _strings.encode(value).decode()
    elif isinstance(value, datetime):
        yield f'"{timestamp(value)}"'
    elif isinstance(value, dict):
        yield "{"
        for index, key in enumerate(sorted(value, key=str)):
            yield ("," if index else "") + _strings.encode(str(key)).decode() + ":"
            yield from _canonical(value[key])
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ","
            yield from _canonical(item)
        yield "]"
    else:
        raise TypeError(f"not a JSON value: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    return "".join(_canonical(value))


def entry_hash(prev_hash: str, entry: Entry) -> str:
    """The link: SHA-256 (hex) of the previous hash followed by the entry's canonical JSON."""
    body = canonical_json({name: getattr(entry, name) for name in ENTRY_FIELDS})
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    entries: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str | None
    broken_at: int | None


class ChainCheck:
    """Walks (entry, prev_hash, hash) in seq order: seqs run 1, 2, 3…, each prev_hash is the hash before it
    (GENESIS first), and each hash is recomputed from the stored fields. `broken_at` is the first bad seq."""

    def __init__(self) -> None:
        self.expected_prev, self.expected_seq = GENESIS, 1
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None
        self.head: str | None = None
        self.broken: int | None = None

    def add(self, entry: Entry, prev_hash: str, stored_hash: str) -> None:
        self.count += 1
        self.first = entry.seq if self.first is None else self.first
        self.last, self.head = entry.seq, stored_hash
        if self.broken is None and (entry.seq != self.expected_seq or prev_hash != self.expected_prev
                                    or entry_hash(prev_hash, entry) != stored_hash):
            self.broken = min(entry.seq, self.expected_seq)
        self.expected_prev, self.expected_seq = stored_hash, entry.seq + 1

    def verdict(self) -> Verdict:
        return Verdict(ok=self.broken is None, entries=self.count, first_seq=self.first, last_seq=self.last,
                       head_hash=self.head, broken_at=self.broken)


def verify(rows: Iterable[tuple[Entry, str, str]]) -> Verdict:
    check = ChainCheck()
    for entry, prev_hash, stored_hash in rows:
        check.add(entry, prev_hash, stored_hash)
    return check.verdict()
