"""SCIM routes answer errors in the SCIM error schema (RFC 7644 3.12), not the /v1 envelope."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from api.core.errors import ApiError, validation_details
from api.core.request_id import request_id
from api.scim.protocol import ScimError, error_body
from api.scim.schemas import MEDIA_TYPE
from commands.errors import NotFound
from commands.group_commit import ConcurrencyConflict
from commands.scim import AlreadyProvisioned
from domain.errors import DomainError, InvalidValue

log = logging.getLogger("causeloop.scim")

_SCIM_TYPE_BY_STATUS = {400: "invalidValue", 409: "uniqueness"}


def to_scim(exc: Exception) -> ScimError:
    match exc:
        case ScimError():
            return exc
        case AlreadyProvisioned():
            return ScimError(409, str(exc), "uniqueness")
        case NotFound():
            return ScimError(404, f"{exc.kind.capitalize()} {exc.public_id} not found")
        case InvalidValue():
            return ScimError(400, exc.message, "invalidValue")
        case DomainError() if exc.code == "forbidden":
            return ScimError(403, exc.message)
        case DomainError() if exc.code == "conflict":
            return ScimError(409, exc.message, "uniqueness")
        case DomainError():
            return ScimError(400, exc.message, "mutability")
        case ConcurrencyConflict():
            return ScimError(409, "The resource was modified concurrently; retry")
        case ApiError():
            return ScimError(exc.status, exc.message, _SCIM_TYPE_BY_STATUS.get(exc.status))
        case msgspec.DecodeError():
            return ScimError(400, f"Malformed request: {exc}", "invalidSyntax")
        case ValidationException():
            reasons = "; ".join(f"{e['field']}: {e['reason']}" for e in validation_details(exc))
            return ScimError(400, f"Malformed request: {reasons}", "invalidSyntax")
        case HTTPException() if exc.status_code < 500:
            return ScimError(exc.status_code, str(exc.detail), _SCIM_TYPE_BY_STATUS.get(exc.status_code))
        case _:
            return ScimError(500, "An unexpected error occurred; retry with exponential backoff")


def scim_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    error = to_scim(exc)
    if error.status == 500:
        log.error("unhandled %s on %s %s [trace_id=%s]", type(exc).__name__, request.method, request.url.path,
                  request_id(request.scope), exc_info=exc)
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if error.status == 401 else {}
    return Response(msgspec.json.encode(error_body(error)), status_code=error.status, media_type=MEDIA_TYPE,
                    headers=headers)


def scim_exception_handlers() -> ExceptionHandlersMap:
    """Override the app's envelope handlers on the SCIM routes (the most specific layer wins)."""
    return {exc_type: scim_error_response for exc_type in (
        ScimError, AlreadyProvisioned, ApiError, DomainError, NotFound, ConcurrencyConflict, msgspec.DecodeError,
        HTTPException, 500)}
