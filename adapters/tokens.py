"""Causeloop access tokens: HS256 JWTs with the claims in api.md (iss, aud, sub, ws, role, scope, jti, iat, exp)."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import jwt
import msgspec

from adapters.settings import Settings

ISSUER = "causeloop"
AUDIENCE = "causeloop-api"
USER_TOKEN_TTL = timedelta(hours=72)
ACCESS_TOKEN = "access_token"
"""Principal.kind of an HS256 access token (a JWT this server minted for a sign-in)."""
_REQUIRED = ["iss", "aud", "sub", "ws", "role", "scope", "jti", "iat", "exp"]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, in which workspace, allowed what."""

    subject: str
    workspace_id: str
    role: str
    scopes: frozenset[str]
    token_id: str
    expires_at: float = 0
    """When the credential expires (epoch seconds, as precise as it is stored); 0: never."""
    session_id: str | None = None
    """The sign-in session (`ses_…`) an exchanged or refreshed token belongs to; None for other tokens."""
    mfa: bool = False
    """The token was minted after a second factor (claim `amr` holds "mfa")."""
    needs_mfa: bool = False
    """Set by the MFA check: the workspace requires MFA and this token has none (403 outside the MFA routes)."""
    kind: str = ACCESS_TOKEN
    """How the caller authenticated: `access_token` (JWT), `personal` (clp_pat_), `service_account` (clp_sa_),
    `scim` (clp_scim_, on /scim/v2 only)."""


class InvalidToken(Exception):
    """Missing, malformed, expired or wrongly signed: always a 401, never more detail than that."""


def mint_access_token(settings: Settings, *, subject: str, workspace_id: str, role: str, scopes: frozenset[str],
                      now: datetime | None = None, ttl: timedelta = USER_TOKEN_TTL, session_id: str | None = None,
                      mfa: bool = False) -> str:
    """`session_id` (claim `sid`) and `amr` (["pwd"] or ["pwd", "mfa"]) are set for tokens from a sign-in session."""
    issued = now or datetime.now(UTC)
    claims: dict[str, object] = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "ws": workspace_id, "role": role,
        "scope": " ".join(sorted(scopes)), "jti": uuid.uuid4().hex,
        "iat": int(issued.timestamp()), "exp": int((issued + ttl).timestamp()),
    }
    if session_id is not None:
        claims["sid"] = session_id
        claims["amr"] = ["pwd", "mfa"] if mfa else ["pwd"]
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def verify_access_token(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(token, settings.jwt_secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER,
                            options={"require": _REQUIRED})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if not all(isinstance(claims[name], str) for name in ("sub", "ws", "role", "scope", "jti")) \
            or not numeric_dates(claims):
        raise InvalidToken("malformed claims")
    session_id, amr = claims.get("sid"), claims.get("amr", [])
    if (session_id is not None and not isinstance(session_id, str)) or not isinstance(amr, list) \
            or not all(isinstance(method, str) for method in amr):
        raise InvalidToken("malformed claims")
    return Principal(subject=claims["sub"], workspace_id=claims["ws"], role=claims["role"],
                     scopes=frozenset(claims["scope"].split()), token_id=claims["jti"], expires_at=claims["exp"],
                     session_id=session_id, mfa="mfa" in amr)


NUMERIC_DATES = ("exp", "iat", "nbf")


def numeric_dates(claims: dict[str, object]) -> bool:
    """Whether `exp`, `iat` and `nbf` (when present) are JSON numbers (RFC 7519 NumericDate). PyJWT checks them
    through int(), which also takes a numeric string: every verifier here refuses such a token."""
    return all(value is None or (isinstance(value, int | float) and not isinstance(value, bool))
               for value in map(claims.get, NUMERIC_DATES))


class TokenVerifier:
    """Verifies access tokens, remembering the recent ones: a client sends the same token on every request.

    Only the signature check is cached; expiry is re-checked on every use, and revocation (a membership
    check) happens after this, per request.
    """

    def __init__(self, settings: Settings, capacity: int = 10_000) -> None:
        self._settings = settings
        self._capacity = capacity
        self._verified: OrderedDict[str, Principal] = OrderedDict()

    def verify(self, token: str, now: float | None = None) -> Principal:
        principal = self._verified.get(token)
        if principal is None:
            principal = verify_access_token(self._settings, token)
            self._verified[token] = principal
            if len(self._verified) > self._capacity:
                self._verified.popitem(last=False)
        else:
            self._verified.move_to_end(token)
        if principal.expires_at <= (now if now is not None else time.time()):
            self._verified.pop(token, None)
            raise InvalidToken("token expired")
        return principal
