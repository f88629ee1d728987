"""List responses: `{"data": [...], "page": {next_cursor, has_more, total}}` with signed keyset cursors.

A handler declares `limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None, sort: SortParam = None`, turns
`sort` into (field, descending) with `parse_sort`, the cursor into the last row's sort key with
`decode_cursor`, fetches `limit + 1` rows after that key, and returns `page_of(...)`.

Lists whose order moves while they are read (a pattern's `risk_score` is computed when read) page by offset
instead, still under a signed cursor (`{"o": 25}`, as the contract's example): `offset_of` and `offset_page`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar import Request
from litestar.params import QueryParameter

from adapters.settings import Settings
from api.core.errors import ApiError, validation_error
from domain.ids import canonical

T = TypeVar("T")

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 2048
MAX_OFFSET = 100_000
_B64URL = re.compile(r"[A-Za-z0-9_-]+")

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}")]
Cursor = Annotated[str | None, QueryParameter(description="Opaque `page.next_cursor` of the previous page")]
SortParam = Annotated[str | None, QueryParameter(description="Sort field; a `-` prefix sorts descending")]


class PageInfo(msgspec.Struct, kw_only=True):
    next_cursor: str | None
    has_more: bool
    total: int


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """A page of a list endpoint; return `Page[IssueSummary]` and OpenAPI names it per item type."""

    data: list[T]
    page: PageInfo


def malformed_cursor() -> ApiError:
    return ApiError(400, "validation_error", "malformed cursor token",
                    {"field": "cursor", "reason": "malformed cursor token"})


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict: only the URL-safe alphabet, and only the canonical spelling (no spare bits set, no padding)."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def _signature(key: str, body: str) -> bytes:
    return hmac.new(key.encode(), body.encode("ascii"), hashlib.sha256).digest()


def encode_cursor(key: str, payload: Mapping[str, object]) -> str:
    """base64url(JSON payload) + "." + base64url(HMAC-SHA256 of the first part): opaque and tamper-evident.

    The payload names the sort it was made under as `"s"` (`{"s": "-created_at", "v": …, "i": …}`).
    """
    body = _b64encode(msgspec.json.encode(payload))
    return f"{body}.{_b64encode(_signature(key, body))}"


def decode_cursor(key: str, token: str, expected_sort: str) -> dict[str, object]:
    """The payload of a cursor; 400 "malformed cursor token" when forged, altered, or made for another sort."""
    body, dot, signature = token.partition(".")
    if not dot or len(token) > MAX_CURSOR_LENGTH:
        raise malformed_cursor()
    try:
        valid = hmac.compare_digest(_b64decode(signature), _signature(key, body))
        decoded = msgspec.json.decode(_b64decode(body)) if valid else None
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise malformed_cursor() from None
    if not isinstance(decoded, dict) or decoded.get("s") != expected_sort:
        raise malformed_cursor()
    payload: dict[str, object] = decoded
    return payload


def split_list(value: str | None) -> list[str] | None:
    """A comma-separated query value as its non-blank parts; None when absent or empty."""
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def parse_choices(field: str, value: str | None, allowed: Collection[str]) -> list[str] | None:
    """A comma-separated filter (`status=open,resolved`, OR): each part must be one of `allowed`, else 400
    naming `field`."""
    parts = split_list(value)
    if parts is not None and not set(parts) <= set(allowed):
        raise validation_error(field, f"must be one of {', '.join(sorted(allowed))}")
    return parts


def parse_pattern_filter(value: str | None) -> str | None:
    """A `pattern_id` filter in its canonical form; a malformed one is a bad query value (400), not a filter that
    matches nothing. Empty: no filter."""
    if not value:
        return None
    public = canonical("pat", value)
    if public is None:
        raise validation_error("pattern_id", "must be a pattern id (pat_…)")
    return public


def parse_sort(value: str | None, allowed: Collection[str], default: str) -> tuple[str, bool]:
    """`-created_at` → ("created_at", True); empty → `default`; a field not in `allowed` → 400 naming `sort`."""
    spec = (value or "").strip() or default
    field, descending = (spec[1:], True) if spec.startswith("-") else (spec, False)
    if field not in allowed:
        choices = ", ".join(f"{f}, -{f}" for f in sorted(allowed))
        raise validation_error("sort", f"must be one of {choices}")
    return field, descending


def sort_spec(field: str, descending: bool) -> str:
    """The canonical sort string a cursor is bound to (`-created_at`)."""
    return f"-{field}" if descending else field


def page_info(fetched: int, *, limit: int, total: int, key: str, sort: str,
              last_position: Callable[[], Mapping[str, object]]) -> PageInfo:
    """The `page` of up to `limit + 1` fetched rows: the extra row only proves there is a next page, whose cursor
    starts after the page's last row (`last_position`)."""
    has_more = fetched > limit
    next_cursor = encode_cursor(key, {**last_position(), "s": sort}) if has_more and limit > 0 else None
    return PageInfo(next_cursor=next_cursor, has_more=has_more, total=total)


def page_of(rows: Sequence[T], *, limit: int, total: int, key: str, sort: str,
            position: Callable[[T], Mapping[str, object]]) -> Page[T]:
    """Build a page from up to `limit + 1` fetched rows."""
    data = list(rows[:limit])
    return Page(data=data, page=page_info(len(rows), limit=limit, total=total, key=key, sort=sort,
                                          last_position=lambda: position(data[-1])))


_page_info_encoder = msgspec.json.Encoder()


def encoded_page(documents: Sequence[str], *, limit: int, total: int, key: str, sort: str,
                 position: Callable[[int], Mapping[str, object]]) -> bytes:
    """`page_of` for rows that are JSON documents already: the page's JSON with the documents spliced in as they
    are, never decoded. `position(i)` is the keyset of the i-th document."""
    info = page_info(len(documents), limit=limit, total=total, key=key, sort=sort,
                     last_position=lambda: position(limit - 1))
    return b'{"data":[' + ",".join(documents[:limit]).encode() + b'],"page":' + _page_info_encoder.encode(info) + b"}"


def cursor_key(request: Request[Any, Any, Any]) -> str:
    """The key cursors are signed with."""
    settings: Settings = request.app.state.settings
    return settings.signing_key_for_cursors


def offset_of(key: str, cursor: str | None, sort: str) -> int:
    """The rows an offset-paged list skips: 0 without a cursor, else the cursor's `o` (400 "malformed cursor
    token" when forged, altered, made for another sort, or out of range)."""
    if not cursor:
        return 0
    offset = decode_cursor(key, cursor, sort).get("o")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise malformed_cursor()
    return offset


def offset_page(rows: Sequence[T], *, offset: int, total: int, key: str, sort: str) -> Page[T]:
    """A page of an offset-paged list; its `next_cursor` skips this page and the ones before it."""
    after = offset + len(rows)
    more = after < total and after <= MAX_OFFSET
    next_cursor = encode_cursor(key, {"o": after, "s": sort}) if more and rows else None
    return Page(data=list(rows), page=PageInfo(next_cursor=next_cursor, has_more=more, total=total))
