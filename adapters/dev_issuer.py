"""The local development issuer: Clerk-style RS256 session tokens, for exercising sign-in without Clerk.

Its RSA key is generated on first use under the data folder (PEM, mode 0600) and its public half is
written beside it as a JWKS document, which the server's one Clerk verifier reads (api.md A: no
"accept any token" mode). Never used when ENVIRONMENT=production.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://clerk.causeloop.localhost"
KEY_FILE = "dev-clerk-key.pem"
JWKS_FILE = "dev-clerk-jwks.json"
TOKEN_TTL = timedelta(hours=1)


def dev_clerk_user_id(email: str) -> str:
    """A stable Clerk-style user id per email, so repeated sign-ins resolve to the same user."""
    return "user_dev_" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:24]


def _b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class DevIssuer:
    """Owns `<data_dir>/dev-clerk-key.pem` and `<data_dir>/dev-clerk-jwks.json`."""

    def __init__(self, data_dir: str | Path) -> None:
        self.directory = Path(data_dir)
        self.key_path = self.directory / KEY_FILE
        self.jwks_path = self.directory / JWKS_FILE

    def private_key(self) -> rsa.RSAPrivateKey:
        """Loads the key, generating it (and the JWKS beside it) the first time."""
        if not self.key_path.exists():
            self._generate()
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        if not self.jwks_path.exists():
            self._write_jwks(key)
        return key

    def ensure_jwks(self) -> Path:
        self.private_key()
        return self.jwks_path

    def mint(self, email: str, *, audience: str = "", authorized_party: str | None = None,
             now: datetime | None = None, ttl: timedelta = TOKEN_TTL) -> str:
        key = self.private_key()
        issued = now or datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": ISSUER, "sub": dev_clerk_user_id(email), "email": email.strip().lower(),
            "sid": f"sess_dev_{uuid.uuid4().hex}", "iat": int(issued.timestamp()),
            "nbf": int(issued.timestamp()), "exp": int((issued + ttl).timestamp()),
        }
        if audience:
            claims["aud"] = audience
        if authorized_party:
            claims["azp"] = authorized_party
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": _kid(key.public_key())})

    def _generate(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        # O_EXCL: when two processes race, the first key wins and the second reads it.
        with contextlib.suppress(FileExistsError):
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            self._write_jwks(key)

    def _write_jwks(self, key: rsa.RSAPrivateKey) -> None:
        public = key.public_key()
        numbers = public.public_numbers()
        document = {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": _kid(public),
                              "n": _b64(numbers.n), "e": _b64(numbers.e)}]}
        temporary = self.jwks_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document))
        temporary.replace(self.jwks_path)


def _kid(public: rsa.RSAPublicKey) -> str:
    """RFC 7638 thumbprint: a new key gets a new kid, so verifiers refetch instead of failing on a stale key."""
    numbers = public.public_numbers()
    canonical = json.dumps({"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
