"""Test doubles for sign-in: a Clerk-like JWKS server on a thread, RSA keys, and Clerk-style tokens."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from api.app import create_app
from tests.e2e.conftest import Tenant, Workers

AUDIENCE = "causeloop-test"
PARTY = "https://app.example.test"


def _b64(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


class SigningKey:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": _b64(numbers.n), "e": _b64(numbers.e)}

    def token(self, *, sub: str, email: str | None = None, ttl: int = 300, **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {"sub": sub, "iat": now, "nbf": now, "exp": now + ttl, "aud": AUDIENCE, "azp": PARTY,
                                "iss": "https://clerk.example.test", **claims}
        if email is not None:
            body["email"] = email
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.private, algorithm="RS256",
                          headers={"kid": self.kid})


class JwksServer:
    """Serves `keys` at /jwks.json and counts the fetches (to prove caching and the refetch on a new kid)."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps({"keys": [key.jwk() for key in outer.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/jwks.json"

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@asynccontextmanager
async def client(settings: Settings, **changes: Any) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    changes.setdefault("db_pool_size", 2)  # the test Postgres is shared: keep each app small
    async with AsyncTestClient(create_app(msgspec.structs.replace(settings, **changes),
                                          configure_logging=False)) as api:
        yield api


def clerk_client(settings: Settings, jwks: JwksServer, data_dir: str
                 ) -> contextlib.AbstractAsyncContextManager[AsyncTestClient]:  # type: ignore[type-arg]
    """An app that verifies Clerk tokens against `jwks` (this module's audience and party; no refetch cooldown)."""
    return client(settings, clerk_jwks_url=jwks.url, clerk_audience=AUDIENCE, clerk_authorized_parties=PARTY,
                  data_dir=data_dir, clerk_jwks_cooldown_s=0.0)


def clerk_fixtures(key: SigningKey, folder: str, api_name: str = "clerk_api") -> tuple[Any, Any]:
    """A module's `jwks` fixture (a JWKS server publishing `key`) and its `clerk_api` fixture (one app for the module
    that verifies Clerk tokens against it; named `api_name`): `jwks, clerk_api = clerk_fixtures(KEY, "signin")`."""
    @pytest.fixture(scope="module")
    def jwks() -> Iterator[JwksServer]:
        with JwksServer(key) as server:
            yield server

    @pytest.fixture(scope="module", name=api_name)
    async def clerk_api(settings: Settings, workers: Workers, jwks: JwksServer,
                        tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
        """One app for the module: the test Postgres is shared, and every app holds its own pools."""
        async with clerk_client(settings, jwks, str(tmp_path_factory.mktemp(folder))) as api:
            yield api

    return jwks, clerk_api


def sub_of(tenant: Tenant) -> str:
    """A Clerk-like user id per tenant owner."""
    return "user_" + hashlib.sha256(tenant.owner_email.encode()).hexdigest()[:20]


async def exchange(api: AsyncTestClient, token: str, **body: Any) -> Any:  # type: ignore[type-arg]
    return await api.post("/v1/auth/exchange", json={"subject_token": token, **body})


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}
