"""Public ids: a type prefix plus a 26-character Crockford base32 ULID of the same 128 bits as the UUID."""

from __future__ import annotations

from typing import NewType
from uuid import UUID

WorkspaceId = NewType("WorkspaceId", str)
OrganizationId = NewType("OrganizationId", str)
UserId = NewType("UserId", str)
IssueId = NewType("IssueId", str)
PatternId = NewType("PatternId", str)
CommentId = NewType("CommentId", str)
SessionId = NewType("SessionId", str)

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
ULID_LENGTH = 26


_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]


def encode_ulid(value: int) -> str:
    """128 bits as 26 Crockford base32 characters (the first holds the top 3 bits).

    Thirteen lookups of 10 bits each in a table of character pairs: ids are rendered for every event
    the projector writes, so this is on a hot path.
    """
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(120, -1, -10)])


def decode_ulid(text: str) -> int | None:
    """The 128-bit value of a ULID string, or None when it is not one."""
    if len(text) != ULID_LENGTH or text[0] not in "01234567":
        return None
    value = 0
    for char in text.upper():
        digit = _DECODE.get(char)
        if digit is None:
            return None
        value = (value << 5) | digit
    return value


def render(prefix: str, uuid: UUID) -> str:
    return f"{prefix}_{encode_ulid(uuid.int)}"


def parse(prefix: str, public_id: str) -> UUID | None:
    """The UUID behind `prefix_ULID`, or None for any other prefix or a malformed id."""
    head, sep, tail = public_id.rpartition("_")
    if not sep or head != prefix:
        return None
    value = decode_ulid(tail)
    return None if value is None else UUID(int=value)


def canonical(prefix: str, public_id: str) -> str | None:
    """The id in canonical upper case, or None when malformed."""
    uuid = parse(prefix, public_id)
    return None if uuid is None else render(prefix, uuid)
