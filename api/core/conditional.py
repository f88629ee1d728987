"""Optimistic concurrency over HTTP: the ETag is the aggregate's version; If-Match names the expected one."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request

from api.core.errors import validation_error

STALE = "precondition_failed: If-Match names an older version (the ETag of the current one is returned)"
"""The 412's description in the OpenAPI document, for every route that honours If-Match."""
_ETAG = re.compile(r'(?:W/)?"(?P<version>\d{1,18})"')


def etag_for(version: int) -> str:
    """Strong ETag of a version: `"3"`."""
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """None when absent or `*` (any version); the version in `"3"` or `W/"3"`; 400 otherwise."""
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.fullmatch(value.strip())
    if match is None:
        raise validation_error("If-Match", 'must be one ETag such as "3", or *')
    return int(match["version"])


def expected_version(request: Request[Any, Any, Any]) -> int | None:
    return parse_if_match(request.headers.get("if-match"))

