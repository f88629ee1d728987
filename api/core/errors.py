"""The error envelope: the one place that turns an exception into `{"error": {code, message, trace_id, details}}`."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from eventsourcing.persistence import RecordConflictError
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    SerializationException,
    ValidationException,
)
from litestar.openapi import ResponseSpec
from litestar.types import ExceptionHandlersMap

from adapters.idempotency import ClaimLost
from api.core.rate_limit import RateLimited, decision_of
from api.core.request_id import request_id
from commands.errors import NotFound, StaleVersion
from commands.group_commit import ConcurrencyConflict
from domain.errors import DomainError, Forbidden, InvalidValue

log = logging.getLogger("causeloop.api")

FieldError = dict[str, object]
Details = dict[str, object] | list[FieldError]


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str
    trace_id: str
    details: Details = msgspec.field(default_factory=dict)


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    """Every error response's body, 429 included."""

    error: ErrorBody


def error_responses(**by_status: str) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors a route answers, in the envelope: `error_responses(e404="not_found: …")`."""
    return {int(key[1:]): ResponseSpec(data_container=ErrorEnvelope, description=text, generate_examples=False)
            for key, text in by_status.items()}


class ApiError(Exception):
    """An error the API answers deliberately, with its status, code and details."""

    def __init__(self, status: int, code: str, message: str, details: Details | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details: Details = details if details is not None else {}
        self.headers = dict(headers or {})


def validation_error(field: str, reason: str) -> ApiError:
    return ApiError(400, "validation_error", f"{field}: {reason}", {"field": field, "reason": reason})


def not_found(kind: str, public_id: str) -> ApiError:
    """Missing and not-visible look the same: `Issue iss_… not found`, details `{"id": …}`."""
    return ApiError(404, "not_found", f"{kind} {public_id} not found", {"id": public_id})


def conflict(message: str, **details: str) -> ApiError:
    return ApiError(409, "conflict", message, dict(details))


def precondition_failed(current_version: int) -> ApiError:
    """The If-Match version is stale; the details tell the caller the version to re-read."""
    return ApiError(412, "precondition_failed", "If-Match does not match the current version",
                    {"current_version": current_version}, headers={"ETag": f'"{current_version}"'})


_CODES_BY_STATUS = {
    400: "validation_error", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 412: "precondition_failed", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "unprocessable", 429: "rate_limited", 503: "service_unavailable",
}
_MESSAGES_BY_STATUS = {
    401: "Missing or invalid bearer token", 403: "Not allowed", 404: "Resource not found",
    405: "Method not allowed", 413: "Request body too large",
}
_DOMAIN_STATUS = {"forbidden": 403, "not_found": 404, "conflict": 409}
"""Domain rules whose documented answer is not 422 (e.g. granting above one's own role is 403 forbidden)."""
_AT_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED_FIELD = re.compile(r"(?:(?:missing required|contains unknown) field |^)`(?P<name>[^`]+)`")
"""msgspec's own messages name a field this way, and so do the input policy's (api/core/input_policy.py)."""


def _field_error(path: str, reason: str) -> FieldError:
    """Name the field a msgspec message is about: `$.a.b` is `a.b`, and a missing/unknown key is appended."""
    field = path.lstrip(".")
    if named := _NAMED_FIELD.search(reason):
        field = f"{field}.{named['name']}" if field else named["name"]
    return {"field": field or "body", "reason": reason}


def _from_msgspec(exc: msgspec.DecodeError) -> FieldError:
    match = _AT_PATH.match(str(exc))
    reason, path = (match["reason"], match["path"] or "") if match else (str(exc), "")
    if not isinstance(exc, msgspec.ValidationError):
        return {"field": "body", "reason": f"malformed JSON: {reason}"}
    return _field_error(path, reason)


def _from_litestar_validation(exc: ValidationException) -> list[FieldError]:
    if isinstance(exc.extra, dict):
        return [{"field": str(k), "reason": str(v)} for k, v in exc.extra.items()]
    errors: list[FieldError] = []
    for item in exc.extra or []:
        key = str(item.get("key", "")) if isinstance(item, dict) else ""
        reason = str(item.get("message", "invalid value")) if isinstance(item, dict) else str(item)
        if key == "data" and reason == "'data'":
            errors.append({"field": "body", "reason": "a JSON request body is required"})
        else:
            errors.append(_field_error("" if key == "data" else key, reason))
    return errors or [{"field": "body", "reason": exc.detail}]


def validation_details(exc: ValidationException) -> list[FieldError]:
    """The fields a Litestar validation error is about: a body msgspec refused, or parameters."""
    cause = exc.__cause__
    if isinstance(cause, msgspec.DecodeError) and not exc.extra:
        return [_from_msgspec(cause)]
    return _from_litestar_validation(exc)


def _validation(errors: list[FieldError]) -> tuple[int, str, str, Details]:
    message = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    return 400, "validation_error", message, errors[0] if len(errors) == 1 else errors


def _classify(exc: Exception) -> tuple[int, str, str, Details]:
    """(status, code, message, details) for one exception; headers are added by the caller."""
    match exc:
        case ApiError():
            return exc.status, exc.code, exc.message, exc.details
        case RateLimited():
            return 429, "rate_limited", "Too many requests", {"limit": exc.decision.limit,
                                                              "retry_after": exc.decision.retry_after}
        case InvalidValue():
            return _validation([{"field": exc.field, "reason": exc.details.get("reason", exc.message)}])
        case Forbidden():
            return 403, exc.code, exc.message, dict(exc.details)
        case DomainError():
            return _DOMAIN_STATUS.get(exc.code, 422), exc.code, exc.message, dict(exc.details)
        case NotFound():
            return 404, "not_found", f"{exc.kind.capitalize()} {exc.public_id} not found", {"id": exc.public_id}
        case ConcurrencyConflict():
            return 409, "conflict", "The resource was modified concurrently; re-read and retry", {}
        case ClaimLost():
            return 409, "idempotency_in_progress", "A retry with this Idempotency-Key took over this request", \
                {"field": "Idempotency-Key", "reason": "taken over by a retry"}
        case RecordConflictError():
            return 409, "conflict", "The resource was modified concurrently; re-read and retry", {}
        case msgspec.DecodeError():  # ValidationError included; EncodeError is ours, a 500
            return _validation([_from_msgspec(exc)])
        case ValidationException():
            return _validation(validation_details(exc))
        case HTTPException() if exc.status_code == 400:
            cause = exc.__cause__
            reason = f"malformed JSON: {exc.detail}" if isinstance(cause, SerializationException) else exc.detail
            return _validation([{"field": "body", "reason": reason}])
        case NotAuthorizedException() | PermissionDeniedException() | NotFoundException() | \
                MethodNotAllowedException():
            status = exc.status_code
            return status, _CODES_BY_STATUS[status], _MESSAGES_BY_STATUS[status], {}
        case HTTPException() if exc.status_code != 500:
            status = exc.status_code
            code = _CODES_BY_STATUS.get(status, "client_error" if status < 500 else "server_error")
            return status, code, _MESSAGES_BY_STATUS.get(status, exc.detail), {}
        case _:
            return 500, "internal_error", "An unexpected error occurred; retry with exponential backoff", {}


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
    """Litestar exception handler for everything: the envelope, its status and the headers worth keeping."""
    if (decision := decision_of(request.scope)) is not None and decision.exceeded:
        exc = RateLimited(decision)  # a request that failed routing is counted only now: the 429 wins over a 404
    trace_id = request_id(request.scope)
    if isinstance(exc, StaleVersion):
        exc = precondition_failed(exc.actual)  # with the current version's ETag, as every 412 carries
    status, code, message, details = _classify(exc)
    if status == 500:
        log.error("unhandled %s on %s %s [trace_id=%s]", type(exc).__name__, request.method,
                  request.url.path, trace_id, exc_info=exc)
    elif isinstance(exc, msgspec.DecodeError):
        # Litestar wraps request-body errors; a bare one escaped a handler and may be our own data's fault.
        log.warning("msgspec %s answered as 400 on %s %s [trace_id=%s]", type(exc).__name__, request.method,
                    request.url.path, trace_id, exc_info=exc)
    headers: dict[str, str] = {}
    if isinstance(exc, HTTPException) and exc.headers:
        headers.update(exc.headers)
    if isinstance(exc, ApiError):
        headers.update(exc.headers)
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.decision.retry_after)
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    body = ErrorEnvelope(error=ErrorBody(code=code, message=message, trace_id=trace_id, details=details))
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def exception_handlers() -> ExceptionHandlersMap:
    """Register `error_response` for every exception; 500 is Litestar's key for 'anything not HTTP-shaped'."""
    return {
        ApiError: error_response,
        RateLimited: error_response,
        DomainError: error_response,
        RecordConflictError: error_response,
        NotFound: error_response,
        StaleVersion: error_response,
        ConcurrencyConflict: error_response,
        ClaimLost: error_response,
        msgspec.DecodeError: error_response,
        HTTPException: error_response,
        500: error_response,
    }
