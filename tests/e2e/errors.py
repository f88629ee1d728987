"""Assertions on the documented error envelope that several API tests share."""

from __future__ import annotations

from typing import Any


def assert_validation_error(response: Any, field: str) -> None:
    """A 400 `validation_error` in the envelope, with a message, the request's trace id, and `details` naming
    `field`."""
    assert response.status_code == 400, (str(response.url), response.text)
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["message"]
    assert error["trace_id"] == response.headers["x-request-id"]
    assert error["details"]["field"] == field, error
