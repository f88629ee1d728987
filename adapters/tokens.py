"""Causeloop access tokens: HS256 JWTs with the claims in api.md (iss, aud, sub, ws, role, scope, jti, iat, exp)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import msgspec

from adapters.settings import Settings

ISSUER = "causeloop"
AUDIENCE = "causeloop-api"
USER_TOKEN_TTL = timedelta(hours=72)
_REQUIRED = ["iss", "aud", "sub", "ws", "role", "scope", "jti", "iat", "exp"]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, in which workspace, allowed what."""

    subject: str
    workspace_id: str
    role: str
    scopes: frozenset[str]
    token_id: str


class InvalidToken(Exception):
    """Missing, malformed, expired or wrongly signed: always a 401, never more detail than that."""


def mint_access_token(settings: Settings, *, subject: str, workspace_id: str, role: str, scopes: frozenset[str],
                      now: datetime | None = None, ttl: timedelta = USER_TOKEN_TTL) -> str:
    issued = now or datetime.now(UTC)
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "ws": workspace_id, "role": role,
        "scope": " ".join(sorted(scopes)), "jti": uuid.uuid4().hex,
        "iat": int(issued.timestamp()), "exp": int((issued + ttl).timestamp()),
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def verify_access_token(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(token, settings.jwt_secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER,
                            options={"require": _REQUIRED})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if not all(isinstance(claims[name], str) for name in ("sub", "ws", "role", "scope", "jti")):
        raise InvalidToken("malformed claims")
    return Principal(subject=claims["sub"], workspace_id=claims["ws"], role=claims["role"],
                     scopes=frozenset(claims["scope"].split()), token_id=claims["jti"])
