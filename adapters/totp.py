"""TOTP (RFC 6238, 30-second steps, 6 digits, SHA-1: what authenticator apps expect) through pyotp."""

from __future__ import annotations

import hmac

import pyotp

ISSUER = "Causeloop"
STEP_S = 30
DRIFT_STEPS = 1


def new_secret() -> str:
    """160 random bits, base32: the secret the user types or scans into an authenticator app."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def matching_step(secret: str, code: str, at: float) -> int | None:
    """The time step whose code equals `code`, allowing one step of clock drift each way; None if none does.

    Returning the step lets the caller refuse a code that was already used (replay within its window).
    """
    totp = pyotp.TOTP(secret)
    current = int(at) // STEP_S
    for offset in (0, -DRIFT_STEPS, DRIFT_STEPS):
        if hmac.compare_digest(totp.at(int(at), counter_offset=offset), code):
            return current + offset
    return None
