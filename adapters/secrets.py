"""Opaque bearer secrets: `clp_<kind>_<43 urlsafe chars = 32 random bytes>`, stored only as SHA-256 hex."""

from __future__ import annotations

import hashlib
import secrets

from domain.credentials.events import TokenKind

PREFIXES: dict[TokenKind, str] = {
    TokenKind.PERSONAL: "clp_pat_",
    TokenKind.SERVICE_ACCOUNT: "clp_sa_",
    TokenKind.SCIM: "clp_scim_",
}
SECRET_BYTES = 32
MAX_SECRET_LENGTH = 128


def new_secret(kind: TokenKind) -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """The lookup key and the only form ever stored or published."""
    return hashlib.sha256(secret.encode()).hexdigest()


def kind_of(secret: str) -> TokenKind | None:
    """The kind a bearer string claims by its prefix, or None when it is not an opaque Causeloop secret."""
    if len(secret) > MAX_SECRET_LENGTH:
        return None
    for kind, prefix in PREFIXES.items():
        if secret.startswith(prefix):
            return kind
    return None
