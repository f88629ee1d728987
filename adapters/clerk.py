"""Verifying Clerk session tokens (RS256 JWTs) against a JWKS: Clerk's in production, the local dev issuer's otherwise.

There is one verification path. Keys come from PyJWT's `PyJWKClient` (the key set cached for 5 minutes,
refetched on an unknown `kid`, at most once per `cooldown_s`); the development issuer's key set is read
from the data folder by the same client class (`LocalJWKClient` only swaps the transport).
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import msgspec

from adapters.dev_issuer import DevIssuer
from adapters.settings import Settings
from adapters.tokens import numeric_dates

ALGORITHM = "RS256"
LEEWAY_S = 5
_REQUIRED = ["exp", "iat", "sub"]


class InvalidSubjectToken(Exception):
    """The subject token is malformed, wrongly signed, expired, for another audience or party: always a 401."""


class JwksUnavailable(Exception):
    """The key set could not be fetched: the caller answers 503, the token may be fine."""


class ClerkClaims(msgspec.Struct, frozen=True, kw_only=True):
    """What sign-in needs from a verified Clerk session token. `email` is optional: Clerk adds it only when the
    instance's session-token template includes it."""

    sub: str
    email: str | None = None


class LocalJWKClient(jwt.PyJWKClient):
    """A PyJWKClient whose key set is a file (the development issuer's): same cache, kid matching and cooldown."""

    def __init__(self, issuer: DevIssuer, cooldown_s: float) -> None:
        super().__init__("http://localhost/.well-known/causeloop-dev-jwks.json", cooldown_duration=cooldown_s)
        self._issuer = issuer

    def fetch_data(self) -> Any:
        try:
            data = json.loads(self._issuer.ensure_jwks().read_text())
        except OSError as exc:
            raise jwt.PyJWKClientConnectionError(f"cannot read the development key set: {exc}") from exc
        if self.jwk_set_cache is not None:
            self.jwk_set_cache.put(data)
        return data


class ClerkVerifier:
    """Checks signature (RS256 only, key by `kid`), expiry, and `aud`/`azp` when configured."""

    def __init__(self, keys: jwt.PyJWKClient, *, audience: str = "", authorized_parties: frozenset[str] = frozenset(),
                 leeway_s: float = LEEWAY_S) -> None:
        self._keys = keys
        self._audience = audience
        self._parties = authorized_parties
        self._leeway = leeway_s

    def verify(self, token: str) -> ClerkClaims:
        """Blocking (a key-set fetch may happen): call it from a thread."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidSubjectToken(f"malformed token: {exc}") from exc
        # Checked before any key lookup: `none`, HS256-with-the-public-key and friends never reach a key.
        if header.get("alg") != ALGORITHM:
            raise InvalidSubjectToken(f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidSubjectToken("the token has no key id")
        try:
            key = self._keys.get_signing_key(kid)
            claims = jwt.decode(token, key.key, algorithms=[ALGORITHM], audience=self._audience or None,
                                leeway=self._leeway,
                                options={"require": [*_REQUIRED, *(["aud"] if self._audience else [])],
                                         "verify_aud": bool(self._audience)})
        except jwt.PyJWKClientConnectionError as exc:
            raise JwksUnavailable(str(exc)) from exc
        except jwt.PyJWTError as exc:
            raise InvalidSubjectToken(str(exc)) from exc
        return self._claims(claims)

    def _claims(self, claims: dict[str, Any]) -> ClerkClaims:
        if not numeric_dates(claims):
            raise InvalidSubjectToken("exp, iat and nbf must be numbers")
        if self._parties and claims.get("azp") not in self._parties:
            raise InvalidSubjectToken("azp is not an authorized party")
        sub, email = claims.get("sub"), claims.get("email")
        if not isinstance(sub, str) or not sub:
            raise InvalidSubjectToken("sub must be a non-empty string")
        return ClerkClaims(sub=sub, email=email if isinstance(email, str) and email else None)



def verifier_for(settings: Settings) -> ClerkVerifier | None:
    """Clerk's JWKS when CLERK_JWKS_URL is set; else the development issuer's, except in production (None: 503)."""
    keys: jwt.PyJWKClient
    if settings.clerk_jwks_url:
        keys = jwt.PyJWKClient(settings.clerk_jwks_url, cooldown_duration=settings.clerk_jwks_cooldown_s, timeout=10)
    elif settings.is_production:
        return None
    else:
        keys = LocalJWKClient(DevIssuer(settings.data_dir), settings.clerk_jwks_cooldown_s)
    return ClerkVerifier(keys, audience=settings.clerk_audience, authorized_parties=settings.authorized_parties)
