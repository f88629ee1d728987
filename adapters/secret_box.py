"""Encryption at rest for secrets that must be read back (TOTP secrets): AES-256-GCM under CAUSELOOP_MASTER_KEY.

Each purpose gets its own key, derived from the master key with HKDF-SHA256, and each ciphertext is bound
to its owner through the associated data (a user's ciphertext cannot be replayed onto another user).
Stored form: `v1.<base64url(nonce ‖ ciphertext+tag)>`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from adapters.settings import Settings

DEV_MASTER_KEY_FILE = "master.key"
_VERSION = "v1"


class MasterKeyMissing(Exception):
    """Production without CAUSELOOP_MASTER_KEY: features that store secrets are unavailable (503)."""


class UndecryptableSecret(Exception):
    """Wrong key, wrong owner or tampered ciphertext."""


def master_key(settings: Settings) -> bytes:
    """CAUSELOOP_MASTER_KEY; outside production a random one kept in `<data_dir>/master.key` (0600) when unset."""
    if settings.causeloop_master_key:
        return base64.b64decode(settings.causeloop_master_key)
    if settings.is_production:
        raise MasterKeyMissing("CAUSELOOP_MASTER_KEY is required in production")
    path = Path(settings.data_dir) / DEV_MASTER_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(base64.b64encode(os.urandom(32)).decode())
    return base64.b64decode(path.read_text().strip())


class SecretBox:
    def __init__(self, master: bytes, purpose: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"causeloop:{purpose}".encode())
        self._aead = AESGCM(derived.derive(master))

    def seal(self, plaintext: str, owner: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), owner.encode())
        return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, owner: str) -> str:
        version, _, body = stored.partition(".")
        if version != _VERSION:
            raise UndecryptableSecret(f"unknown ciphertext version {version!r}")
        try:
            raw = base64.urlsafe_b64decode(body)
            return self._aead.decrypt(raw[:12], raw[12:], owner.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise UndecryptableSecret("ciphertext does not open with this key and owner") from exc


def cached_box(settings: Settings, purpose: str) -> Callable[[], SecretBox]:
    """The box a long-running worker opens its secrets with: built on first use (a missing master key fails that
    use, not the start), then kept."""
    return functools.lru_cache(maxsize=1)(lambda: SecretBox(master_key(settings), purpose))
