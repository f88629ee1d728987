"""Sign-in through the public API: Clerk exchange (verified against a JWKS), refresh rotation, family revocation."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from litestar.testing import AsyncTestClient

from adapters.dev_issuer import DevIssuer
from adapters.event_store import EventStore
from adapters.settings import Settings
from cli.main import main
from domain.ids import parse
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.signin_support import (
    AUDIENCE,
    PARTY,
    JwksServer,
    SigningKey,
    bearer,
    clerk_fixtures,
    client,
    exchange,
    sub_of,
)
from workers.operations import rebuild

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
KEY = SigningKey("key-1")


jwks, clerk_api = clerk_fixtures(KEY, "clerk")


async def sign_in(api: Client, tenant: Tenant) -> dict[str, Any]:
    response = await exchange(api, KEY.token(sub=sub_of(tenant), email=tenant.owner_email))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_exchange_returns_the_documented_token_response(clerk_api: Client, tenant: Tenant) -> None:
    response = await exchange(clerk_api, KEY.token(sub=sub_of(tenant), email=tenant.owner_email))

    body = response.json()
    assert response.status_code == 200, response.text
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "scope", "workspace_id"}
    assert body["refresh_token"].startswith("clp_refresh_") and body["token_type"] == "bearer"
    assert body["expires_in"] == 259200 and body["workspace_id"] == tenant.workspace_id
    assert "issues:read" in body["scope"].split() and response.headers["cache-control"] == "no-store"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == tenant.user_id and claims["sid"].startswith("ses_") and claims["amr"] == ["pwd"]
    assert (await clerk_api.get("/v1/issues", headers=bearer(body))).status_code == 200


async def test_the_first_sign_in_by_email_links_the_clerk_id_so_later_ones_match_without_email(
        clerk_api: Client, tenant: Tenant) -> None:
    await sign_in(clerk_api, tenant)

    again = await exchange(clerk_api, KEY.token(sub=sub_of(tenant)))

    assert again.status_code == 200, again.text
    assert again.json()["workspace_id"] == tenant.workspace_id


def _hs256_with_public_key(tenant: Tenant) -> str:
    public_pem = KEY.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT","kid":"key-1"}')
    payload = jwt.utils.base64url_encode(
        f'{{"sub":"{sub_of(tenant)}","email":"{tenant.owner_email}","exp":{int(time.time()) + 300},'
        f'"iat":{int(time.time())},"aud":"{AUDIENCE}","azp":"{PARTY}"}}'.encode())
    import hmac
    signature = hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    return (header + b"." + payload + b"." + jwt.utils.base64url_encode(signature)).decode()


def _alg_none(tenant: Tenant) -> str:
    return jwt.encode({"sub": sub_of(tenant), "email": tenant.owner_email, "exp": int(time.time()) + 300,
                       "iat": int(time.time()), "aud": AUDIENCE, "azp": PARTY}, None, algorithm="none",
                      headers={"kid": "key-1"})


BAD_TOKENS = {
    "expired": lambda t: KEY.token(sub=sub_of(t), email=t.owner_email, ttl=-60),
    "wrong_signature": lambda t: SigningKey("key-1").token(sub=sub_of(t), email=t.owner_email),
    "wrong_audience": lambda t: KEY.token(sub=sub_of(t), email=t.owner_email, aud="someone-else"),
    "unauthorized_party": lambda t: KEY.token(sub=sub_of(t), email=t.owner_email, azp="https://evil.example"),
    "alg_none": _alg_none,
    "numeric_string_exp": lambda t: KEY.token(sub=sub_of(t), email=t.owner_email, exp=str(int(time.time()) + 300)),
    "numeric_string_iat": lambda t: KEY.token(sub=sub_of(t), email=t.owner_email, iat=str(int(time.time()))),
    "hs256_with_the_public_key": _hs256_with_public_key,
    "garbage": lambda t: "not.a.jwt",
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_an_unverifiable_subject_token_is_401_invalid_grant(clerk_api: Client, tenant: Tenant,
                                                                  kind: str) -> None:
    response = await exchange(clerk_api, BAD_TOKENS[kind](tenant))

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_grant"
    assert "subject_token is invalid" in response.json()["error"]["message"]


async def test_a_key_rotated_in_at_clerk_is_fetched_on_its_unknown_kid(
        clerk_api: Client, tenant: Tenant, jwks: JwksServer) -> None:
    await sign_in(clerk_api, tenant)
    fetched = jwks.fetches
    rotated = SigningKey("key-2")
    jwks.keys = [KEY, rotated]  # Clerk publishes the next key beside the current one
    try:
        response = await exchange(clerk_api, rotated.token(sub=sub_of(tenant), email=tenant.owner_email))
    finally:
        jwks.keys = [KEY]

    assert response.status_code == 200, response.text
    assert jwks.fetches == fetched + 1


async def test_unknown_kids_refetch_the_key_set_at_most_once_per_cooldown(
        settings: Settings, workers: Workers, tenant: Tenant, tmp_path: Path) -> None:
    with JwksServer(KEY) as jwks:
        async with client(settings, clerk_jwks_url=jwks.url, clerk_audience=AUDIENCE, clerk_authorized_parties=PARTY,
                          data_dir=str(tmp_path), clerk_jwks_cooldown_s=300.0) as api:
            await sign_in(api, tenant)
            await sign_in(api, tenant)
            stranger = SigningKey("unknown-kid")
            for _ in range(3):
                response = await exchange(api, stranger.token(sub=sub_of(tenant), email=tenant.owner_email))
                assert response.status_code == 401

        assert jwks.fetches == 1, "the key set is cached, and unknown kids wait for the cooldown"


async def test_an_unknown_identity_is_403_and_never_created(clerk_api: Client, tenant: Tenant) -> None:
    response = await exchange(clerk_api, KEY.token(sub="user_nobody", email="nobody@example.test"))

    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


async def test_a_requested_workspace_must_be_one_of_the_users_active_memberships(
        clerk_api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    token = KEY.token(sub=sub_of(tenant), email=tenant.owner_email)

    own = await exchange(clerk_api, token, workspace_id=tenant.workspace_id)
    foreign = await exchange(clerk_api, token, workspace_id=other_tenant.workspace_id)

    assert own.status_code == 200 and own.json()["workspace_id"] == tenant.workspace_id
    assert foreign.status_code == 403


async def test_production_without_clerk_jwks_is_503(settings: Settings, workers: Workers, tenant: Tenant) -> None:
    async with client(settings, environment="production", jwt_secret="a-production-secret-of-at-least-32-bytes!",
                      clerk_jwks_url="") as api:
        response = await exchange(api, KEY.token(sub=sub_of(tenant), email=tenant.owner_email))

    assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"


async def test_refresh_rotates_both_tokens(clerk_api: Client, tenant: Tenant) -> None:
    first = await sign_in(clerk_api, tenant)

    response = await clerk_api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})

    second = response.json()
    assert response.status_code == 200, response.text
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert second["workspace_id"] == tenant.workspace_id and second["expires_in"] == 259200
    assert (await clerk_api.get("/v1/issues", headers=bearer(second))).status_code == 200


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(clerk_api: Client, tenant: Tenant) -> None:
    first = await sign_in(clerk_api, tenant)
    second = (await clerk_api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()

    reuse = await clerk_api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    newest = await clerk_api.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    access = await clerk_api.get("/v1/issues", headers=bearer(second))

    assert reuse.status_code == 401 and reuse.json()["error"]["code"] == "unauthorized"
    assert newest.status_code == 401, "the newest refresh token of a revoked family stops working too"
    assert access.status_code == 401, "so do the family's access tokens"


async def test_a_signed_in_person_makes_a_long_lived_token_and_a_token_it_made_cannot(clerk_api: Client,
                                                                                     tenant: Tenant) -> None:
    """A sign-in session's access token expires in 72 h but stands for the person, who can refresh or sign in
    again: it may make a token that never expires. A token it made with an expiry is a delegation: it may not."""
    session = bearer(await sign_in(clerk_api, tenant))
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()

    forever = await clerk_api.post("/v1/api-tokens", json={"name": "ci", "scopes": ["issues:read"]}, headers=session)
    delegated = await clerk_api.post("/v1/api-tokens", json={
        "name": "helper", "scopes": ["api_tokens:write", "issues:read"], "expires_at": soon}, headers=session)
    from_delegated = await clerk_api.post("/v1/api-tokens", json={"name": "ci-2", "scopes": ["issues:read"]},
                                          headers={"Authorization": f"Bearer {delegated.json()['secret']}"})

    assert forever.status_code == 201 and forever.json()["expires_at"] is None
    assert delegated.status_code == 201
    assert from_delegated.status_code == 403 and from_delegated.json()["error"]["details"]["field"] == "expires_at"


async def test_an_unknown_refresh_token_is_401(clerk_api: Client) -> None:
    response = await clerk_api.post("/v1/auth/refresh", json={"refresh_token": "clp_refresh_made-up"})

    assert response.status_code == 401


async def test_events_keep_only_the_refresh_tokens_hash_and_logs_never_show_it(
        clerk_api: Client, tenant: Tenant, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    first = await sign_in(clerk_api, tenant)
    second = (await clerk_api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()

    sid = jwt.decode(second["access_token"], options={"verify_signature": False})["sid"]
    store = EventStore(settings, pool_size=1)
    try:
        stream_id = parse("ses", sid)
        assert stream_id is not None
        stored = [n.state for n in store.recorder.select_events(stream_id)]
    finally:
        store.close()
    raw = b"".join(stored)
    for secret in (first["refresh_token"], second["refresh_token"]):
        assert secret.encode() not in raw and secret not in caplog.text
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in raw


async def test_the_development_issuer_signs_tokens_the_same_verifier_accepts(
        settings: Settings, workers: Workers, tenant: Tenant, tmp_path: Path) -> None:
    issuer = DevIssuer(tmp_path)

    async with client(settings, clerk_jwks_url="", data_dir=str(tmp_path)) as api:
        token = issuer.mint(tenant.owner_email)
        good = await exchange(api, token)
        forged = await exchange(api, SigningKey("whatever").token(sub="user_dev_x", email=tenant.owner_email,
                                                                  aud=None, azp=None))
        published = await api.get("/.well-known/causeloop-dev-jwks.json")

    assert good.status_code == 200, good.text
    assert [key["kid"] for key in published.json()["keys"]] == [jwt.get_unverified_header(token)["kid"]]
    assert forged.status_code == 401, "no 'accept anything' mode in development"
    assert oct(issuer.key_path.stat().st_mode & 0o777) == "0o600"


async def test_the_development_key_set_is_not_published_when_clerk_is_configured(clerk_api: Client) -> None:
    assert (await clerk_api.get("/.well-known/causeloop-dev-jwks.json")).status_code == 404


def _sessions_of(settings: Settings, workspace_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        return conn.execute("SELECT id, user_id, status, refresh_hash, previous_hashes, mfa, created_at, refreshed_at,"
                            " version FROM auth_sessions WHERE workspace_id = %s ORDER BY id",
                            (workspace_id,)).fetchall()


async def test_a_rebuilt_sessions_read_model_equals_the_live_one_and_refresh_still_finds_families(
        clerk_api: Client, tenant: Tenant, settings: Settings) -> None:
    first = await sign_in(clerk_api, tenant)
    await clerk_api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    await clerk_api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})  # reuse: revoked
    live = await sign_in(clerk_api, tenant)
    before = _sessions_of(settings, tenant.workspace_id)

    await asyncio.to_thread(rebuild, settings, "sessions")

    assert _sessions_of(settings, tenant.workspace_id) == before and len(before) == 2
    refreshed = await clerk_api.post("/v1/auth/refresh", json={"refresh_token": live["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text


async def test_the_per_request_check_reads_the_rebuilt_sessions_table(clerk_api: Client, tenant: Tenant,
                                                                     settings: Settings) -> None:
    first = await sign_in(clerk_api, tenant)
    for _ in range(6):  # past the point where the API's connections keep a plan of the standing check
        assert (await clerk_api.get("/v1/issues", headers=bearer(first))).status_code == 200

    await asyncio.to_thread(rebuild, settings, "sessions")
    served = await clerk_api.get("/v1/issues", headers=bearer(first))
    await clerk_api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    await clerk_api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})  # reuse: revoked
    refused = await clerk_api.get("/v1/issues", headers=bearer(first))

    assert served.status_code == 200 and refused.status_code == 401


async def test_a_refresh_after_the_membership_ended_is_401_and_revokes_the_family(
        clerk_api: Client, tenant: Tenant, settings: Settings) -> None:
    tokens = await sign_in(clerk_api, tenant)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:  # stands in for MemberSuspended
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        conn.execute("UPDATE memberships SET status = 'suspended' WHERE workspace_id = %s AND user_id = %s",
                     (tenant.workspace_id, tenant.user_id))

    response = await clerk_api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})

    assert response.status_code == 401
    assert [row[2] for row in _sessions_of(settings, tenant.workspace_id)] == ["revoked"]


async def test_a_token_from_causeloop_token_clerk_signs_in_through_the_exchange(
        settings: Settings, workers: Workers, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    email, slug = f"shell-{uuid.uuid4().hex[:8]}@example.test", f"shell-{uuid.uuid4().hex[:8]}"
    environ = {"DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema,
               "JWT_SECRET": settings.jwt_secret, "DATA_DIR": str(tmp_path)}

    assert main(["token", "--clerk", "--email", email, "--workspace", slug], environ) == 0
    subject_token = capsys.readouterr().out.strip()
    _wait_for_member(settings, email)
    async with client(settings, clerk_jwks_url="", data_dir=str(tmp_path)) as api:
        response = await exchange(api, subject_token)

    assert response.status_code == 200, response.text
    assert jwt.decode(response.json()["access_token"], options={"verify_signature": False})["role"] == "owner"


def _wait_for_member(settings: Settings, email: str) -> None:
    """The CLI does not wait for the identity projection; the API would (read-your-writes)."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        deadline = time.monotonic() + 10
        while conn.execute("SELECT 1 FROM users u JOIN memberships m ON m.user_id = u.id WHERE u.email = %s",
                           (email,)).fetchone() is None:
            assert time.monotonic() < deadline, "the identity projection never had the member"
            time.sleep(0.01)


async def test_openapi_documents_the_sign_in_and_mfa_routes(clerk_api: Client) -> None:
    paths = (await clerk_api.get("/openapi.json")).json()["paths"]

    for path in ("/v1/auth/exchange", "/v1/auth/refresh"):
        assert paths[path]["post"].get("security") in (None, []), "no bearer needed"
        assert "401" in paths[path]["post"]["responses"]
    assert "503" in paths["/v1/auth/exchange"]["post"]["responses"]
    assert paths["/v1/me/mfa/totp"]["post"]["security"] == [{"BearerAuth": []}]
    assert {"post"} <= set(paths["/v1/me/mfa/totp/verify"]) and "delete" in paths["/v1/me/mfa/totp"]
