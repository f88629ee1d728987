"""Errors the write side reports besides domain rule violations."""

from __future__ import annotations


class NotFound(Exception):
    """No such stream in the caller's workspace (another workspace's id looks exactly the same)."""

    def __init__(self, kind: str, public_id: str) -> None:
        super().__init__(f"{kind} {public_id} not found")
        self.kind = kind
        self.public_id = public_id


class StaleVersion(Exception):
    """The caller's If-Match names a version that is no longer current."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected version {expected}, current version is {actual}")
        self.expected = expected
        self.actual = actual
