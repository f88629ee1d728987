"""SCIM 2.0 wire rules (RFC 7643/7644) that do not depend on our state: errors, filters, PATCH operations.

Identity providers differ: Okta sends `{"op": "replace", "value": {"active": false}}`, Entra ID sends
`{"op": "Replace", "path": "active", "value": "False"}`. Both normalise to the same `UserChange`.
"""

from __future__ import annotations

import re
from typing import Any

from api.scim.schemas import Error, PatchRequest

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
MAX_COUNT = 200

_FILTER = re.compile(r'^\s*(?P<attr>[A-Za-z][\w.:]*)\s+(?P<op>eq)\s+"(?P<value>(?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


class ScimError(Exception):
    """An answer in the SCIM error schema (never the /v1 envelope): `status` is a string, `scimType` optional."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


def error_body(exc: ScimError) -> Error:
    return Error(schemas=[ERROR_SCHEMA], status=str(exc.status), detail=exc.detail, scimType=exc.scim_type)


def parse_filter(text: str | None, allowed: dict[str, str]) -> tuple[str, str] | None:
    """`userName eq "a@b.c"` → ("userName", "a@b.c"); attribute names are case-insensitive (RFC 7644 3.4.2.2).

    Only `eq` on the attributes in `allowed` (lower-case name → canonical name); anything else is 400 invalidFilter.
    """
    if text is None or not text.strip():
        return None
    match = _FILTER.match(text)
    canonical = allowed.get(match["attr"].lower()) if match else None
    if match is None or canonical is None:
        raise ScimError(400, f"Unsupported filter {text!r}: use {' or '.join(allowed.values())} eq \"…\"",
                        "invalidFilter")
    return canonical, match["value"].replace('\\"', '"').replace("\\\\", "\\")


MAX_START = 2**31 - 1
"""No workspace holds this many members; beyond it an offset would not even fit Postgres' bigint."""


def page_bounds(start_index: int | None, count: int | None) -> tuple[int, int]:
    """1-based `startIndex` (below 1 reads as 1, past MAX_START as MAX_START: an empty page either way) and `count`
    (negative reads as 0, capped at MAX_COUNT)."""
    start = min(max(1, start_index or 1), MAX_START)
    size = MAX_COUNT if count is None else min(max(0, count), MAX_COUNT)
    return start, size


def as_bool(value: object, field: str) -> bool:
    """SCIM booleans; Entra ID sends them as the strings "True"/"False"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise ScimError(400, f"{field} must be a boolean", "invalidValue")


def operations(request: PatchRequest) -> list[tuple[str, str | None, Any]]:
    """(op in lower case, path or None, value) of a PatchOp; an unknown op or none at all is 400 invalidSyntax."""
    result = []
    for operation in request.Operations:
        op = operation.op.strip().lower()
        if op not in {"add", "replace", "remove"}:
            raise ScimError(400, f"Unsupported op {operation.op!r}", "invalidSyntax")
        result.append((op, operation.path.strip() if operation.path else None, operation.value))
    if not result:
        raise ScimError(400, "A PatchOp needs at least one operation", "invalidSyntax")
    return result


def user_active_change(ops: list[tuple[str, str | None, Any]]) -> bool | None:
    """The `active` value a User PatchOp sets (the last one wins), or None when it does not touch `active`.

    Other attributes (name, emails, externalId …) are accepted and not applied: a user's identity is theirs.
    """
    active: bool | None = None
    for op, path, value in ops:
        if path is not None and path.lower() == "active":
            if op == "remove":
                raise ScimError(400, "active cannot be removed", "mutability")
            active = as_bool(value, "active")
        elif path is None and op in {"add", "replace"} and isinstance(value, dict):
            for key, item in value.items():
                if key.lower() == "active":
                    active = as_bool(item, "active")
    return active


def member_ids(value: object) -> list[str]:
    """`[{"value": "usr_…"}, …]` (or one such object) → the ids."""
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    ids = [item.get("value") for item in items if isinstance(item, dict)]
    if len(ids) != len(items) or not all(isinstance(i, str) for i in ids):
        raise ScimError(400, "members must be a list of {\"value\": id}", "invalidValue")
    return [str(i) for i in ids]


_MEMBER_FILTER = re.compile(r'^members\s*\[\s*value\s+eq\s+"(?P<id>[^"]+)"\s*\]$', re.IGNORECASE)


def group_member_changes(ops: list[tuple[str, str | None, Any]]) -> tuple[list[str], list[str], list[str] | None]:
    """(added, removed, replaced-with or None) member ids of a Group PatchOp. Other paths (displayName) are
    not changeable: a group is a role."""
    added: list[str] = []
    removed: list[str] = []
    replaced: list[str] | None = None
    for op, path, value in ops:
        lowered = (path or "").lower()
        if path is None and isinstance(value, dict) and "members" in {k.lower() for k in value}:
            members = next(v for k, v in value.items() if k.lower() == "members")
            if op == "add":
                added += member_ids(members)
            elif op == "replace":
                replaced = member_ids(members)
            continue
        if lowered == "members":
            if op == "add":
                added += member_ids(value)
            elif op == "replace":
                replaced = member_ids(value)
            elif value is not None:
                removed += member_ids(value)
            else:
                replaced = []
            continue
        matched = _MEMBER_FILTER.match(path or "")
        if matched and op == "remove":
            removed.append(matched["id"])
            continue
        if lowered in {"displayname", "externalid"} or path is None:
            continue  # a group's name is its role key; renames are ignored
        raise ScimError(400, f"Unsupported path {path!r}", "invalidPath")
    return added, removed, replaced
