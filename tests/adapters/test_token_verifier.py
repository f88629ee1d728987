"""The token cache never accepts what verification would refuse."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from adapters.settings import Settings
from adapters.tokens import InvalidToken, TokenVerifier, mint_access_token


def _token(settings: Settings, ttl: timedelta) -> str:
    return mint_access_token(settings, subject="usr_x", workspace_id="ws_x", role="viewer",
                             scopes=frozenset({"issues:read"}), now=datetime.now(UTC), ttl=ttl)


def test_a_cached_token_is_refused_once_it_expires() -> None:
    settings = Settings()
    verifier = TokenVerifier(settings)
    token = _token(settings, timedelta(seconds=30))
    principal = verifier.verify(token)

    with pytest.raises(InvalidToken):
        verifier.verify(token, now=principal.expires_at + 1)


def test_a_forged_token_is_never_cached_as_valid() -> None:
    verifier = TokenVerifier(Settings())
    forged = _token(Settings(jwt_secret="another-secret-that-is-long-enough-to-use"), timedelta(hours=1))

    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.verify(forged)


def test_the_cache_stays_within_its_capacity() -> None:
    settings = Settings()
    verifier = TokenVerifier(settings, capacity=3)
    tokens = [_token(settings, timedelta(hours=1, seconds=n)) for n in range(5)]

    principals = [verifier.verify(token) for token in tokens]

    assert len(verifier._verified) == 3
    assert all(p.expires_at > time.time() for p in principals)
