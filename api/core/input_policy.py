"""The one input policy of every route, applied where a request is decoded (docs/api.md, "Input policy").

Whatever a command accepts must be storable by every store, applicable by every projector and replayable by
every rebuild, so the bounds are those of the weakest of them:
- text holds no NUL (Postgres `text` cannot) and no lone surrogate (UTF-8 cannot encode one);
- a JSON body nests at most MAX_JSON_DEPTH levels (projectors and the audit chain walk documents recursively;
  msgspec itself gives up near 1,000 levels with a RecursionError);
- a datetime carries an offset and, normalized to UTC, lies in [EARLIEST, LATEST) (an offset can push a
  valid-looking value past year 9999, which Python's datetime cannot hold);
- the request target (path and query string) is valid UTF-8 without NUL;
- the body is bounded by MAX_BODY_BYTES (413) and the request head by MAX_HEADER_BYTES (431, enforced by the
  server while the head arrives: cli/http_protocol.py).
JSON bodies are decoded by Litestar through `PolicyRequest.json`; every typed body derives from `RequestBody`,
which normalizes its datetimes.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Request
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.enums import ScopeType
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.openapi.spec import Schema
from litestar.params import QueryParameter
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.typing import FieldDefinition

from api.core.errors import ApiError

MAX_JSON_DEPTH = 32
MAX_HEADER_BYTES = 16_384
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_FORBIDDEN_TEXT = re.compile("[\x00\ud800-\udfff]")


def refused(field: str, reason: str) -> ApiError:
    return ApiError(400, "validation_error", f"{field}: {reason}", {"field": field, "reason": reason})


def _path(parent: str, key: object) -> str:
    return f"{parent}[{key}]" if isinstance(key, int) else f"{parent}.{key}" if parent else str(key)


def check_text(value: str, field: str) -> None:
    if (found := _FORBIDDEN_TEXT.search(value)) is not None:
        what = "NUL" if found.group() == "\x00" else "a lone surrogate"
        raise refused(field, f"text may not contain {what} (U+{ord(found.group()):04X})")


def check_value(value: object, field: str = "", depth: int = 1) -> None:
    """Walk a decoded JSON value (or a Struct of them): text free of NUL and lone surrogates, depth bounded."""
    if isinstance(value, str):
        check_text(value, field or "body")
    elif isinstance(value, dict | list | tuple | msgspec.Struct):
        if depth > MAX_JSON_DEPTH:
            raise refused(field or "body", f"nested deeper than {MAX_JSON_DEPTH} levels")
        items: Any
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, msgspec.Struct):
            items = ((name, getattr(value, name)) for name in value.__struct_fields__)
        else:
            items = enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                check_text(key, _path(field, key))
            check_value(item, _path(field, key), depth + 1)


QueryInstant = Annotated[str | None, QueryParameter(
    format="date-time", description="RFC 3339 with a UTC offset, e.g. 2026-01-31T12:00:00Z")]
"""A datetime in the query, read by `query_instant` under the body rule (Litestar would take 0.5 for a datetime)."""


def query_instant(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return utc_instant(datetime.fromisoformat(value), field)
    except ValueError:
        raise refused(field, "must be an RFC 3339 datetime with a UTC offset (e.g. 2026-01-31T12:00:00Z), "
                             f"between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}") from None


def utc_instant(value: datetime, field: str) -> datetime:
    """`value` in UTC, refused when it has no offset or lies outside [EARLIEST, LATEST)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"`{field}` needs a UTC offset (e.g. 2026-01-31T12:00:00Z)")
    try:
        normalized = value.astimezone(UTC)
    except OverflowError:
        normalized = None
    if normalized is None or not EARLIEST <= normalized < LATEST:
        raise ValueError(f"`{field}` must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    return normalized


class RequestBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every typed request body. Unknown fields are refused (a typo is a 400, not an ignored change), and
    datetimes are normalized to UTC within the policy's range while msgspec decodes (a ValueError here becomes a
    400 naming the field)."""

    checks_own_values: ClassVar[bool] = False
    """True for a body whose values its command checks one by one (an ingestion batch: one bad record is rejected
    alone, not the request). The policy's walk of the whole body is then skipped: the command must itself refuse
    NUL, lone surrogates and deep nesting in whatever it keeps."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                msgspec.structs.force_setattr(self, name, utc_instant(value, name))


class ClosedBodySchema(StructSchemaPlugin):
    """The OpenAPI schema of a RequestBody that refuses unknown fields says so (`additionalProperties: false`), so a
    client generated from the document validates what the server does. (Litestar's own struct schema plugin is
    private API: litestar is pinned, and the OpenAPI tests would show a change.)"""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return super().is_plugin_supported_field(field_definition) and field_definition.is_subclass_of(RequestBody)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        if field_definition.type_.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


class PolicyRequest(Request[Any, Any, Any]):
    """The app's request class: a typed body is decoded strictly into its type (Litestar's own conversion of `data`
    is lax: it would take a JSON 0 for a datetime, 0 for false, "1" for 1), anything else by Litestar; then the
    policy's walk. Deep nesting is a 400."""

    async def json(self) -> Any:
        body_type = typed_body(self.route_handler)
        try:
            if body_type is not None and (body := await self.body()):
                value = msgspec.json.decode(body, type=body_type)
            else:
                value = await super().json()
        except RecursionError:
            raise refused("body", f"nested deeper than {MAX_JSON_DEPTH} levels") from None
        except msgspec.DecodeError as exc:  # the error handlers name the field from the cause
            raise ValidationException() from exc
        if not getattr(body_type, "checks_own_values", False):
            check_value(value)
        return value


@functools.cache
def typed_body(handler: HTTPRouteHandler) -> Any | None:
    """The declared type of a route's RequestBody (`T` or `T | None`), or None for a route without one."""
    field = handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return None
    parts = field.inner_types if field.is_union else (field,)
    return field.annotation if any(part.is_subclass_of(RequestBody) for part in parts) else None


def check_target(scope: Scope) -> None:
    """The request's path and query string, percent-decoded, must be UTF-8 without NUL."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    # Some clients' ASGI adapters (httpx) leave the query in raw_path; the ASGI spec and uvicorn do not.
    for field, raw in (("path", raw_path.partition(b"?")[0]), ("query", scope.get("query_string", b""))):
        decoded = unquote_to_bytes(raw.replace(b"+", b" "))
        try:
            check_text(decoded.decode("utf-8"), field)
        except UnicodeDecodeError:
            raise refused(field, "is not valid UTF-8 once percent-decoded") from None


class TargetPolicyMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        check_target(scope)
        await next_app(scope, receive, send)
