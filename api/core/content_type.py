"""Routes that take a JSON body refuse other media types with 415, instead of parsing them as JSON anyway."""

from __future__ import annotations

from typing import cast

from litestar.enums import RequestEncodingType, ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.params import BodyKwarg
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

from api.core.errors import ApiError
from api.core.request_id import header_value

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def takes_json_body(handler: HTTPRouteHandler) -> bool:
    field = handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return False
    kwarg = field.kwarg_definition
    return not isinstance(kwarg, BodyKwarg) or kwarg.media_type == RequestEncodingType.JSON


def is_json_media_type(content_type: str) -> bool:
    """`application/json`, any `+json` type (merge-patch), with or without parameters such as charset."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        return True
    return media_type.startswith("application/") and media_type.endswith("+json")


class JsonContentTypeMiddleware(ASGIMiddleware):
    """A missing Content-Type is tolerated (many clients omit it); a non-JSON one is a 415."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope.get("route_handler")
        method = cast("HTTPScope", scope)["method"]
        if method in _BODY_METHODS and isinstance(handler, HTTPRouteHandler) and takes_json_body(handler):
            content_type = header_value(scope, b"content-type")
            if content_type is not None and not is_json_media_type(content_type):
                raise ApiError(415, "unsupported_media_type", "Send the body as application/json",
                               {"field": "Content-Type", "reason": f"{content_type} is not application/json"})
        await next_app(scope, receive, send)
