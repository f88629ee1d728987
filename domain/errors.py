"""Domain errors: each names one rule that a decision refused to break."""

from __future__ import annotations


class DomainError(Exception):
    """A command that is well-formed but not allowed in the current state."""

    code = "domain_error"

    def __init__(self, message: str, **details: str) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidTransition(DomainError):
    code = "invalid_transition"


class InvalidValue(DomainError):
    """A value the domain rejects; reported like a validation failure on `field`."""

    code = "validation_error"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", field=field, reason=reason)
        self.field = field


class Forbidden(DomainError):
    """The actor may not do this (e.g. grant a role or scopes above their own): answered as 403 `forbidden`."""

    code = "forbidden"
