"""MFA through the public API: TOTP enrol/verify/remove, the sign-in second factor, and `mfa_required`."""

from __future__ import annotations

import logging
import time
from typing import Any

import jwt
import pyotp
import pytest
from litestar.testing import AsyncTestClient

from adapters import totp
from adapters.event_store import EventStore
from adapters.settings import Settings
from commands.mfa import mfa_stream
from domain.identity.roles import Role
from tests.e2e.conftest import Tenant
from tests.e2e.signin_support import (
    SigningKey,
    bearer,
    clerk_fixtures,
    exchange,
    sub_of,
)

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
KEY = SigningKey("mfa-key")


jwks, api = clerk_fixtures(KEY, "mfa", api_name="api")


async def signed_in(api: Client, tenant: Tenant, **body: Any) -> Any:
    return await exchange(api, KEY.token(sub=sub_of(tenant), email=tenant.owner_email), **body)


async def enrol(api: Client, headers: dict[str, str]) -> str:
    response = await api.post("/v1/me/mfa/totp", headers=headers)
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


async def activate(api: Client, headers: dict[str, str]) -> str:
    secret = await enrol(api, headers)
    response = await api.post("/v1/me/mfa/totp/verify", json={"code": code_at(secret, time.time())},
                              headers=headers)
    assert response.status_code == 200, response.text
    return secret


def code_at(secret: str, at: float) -> str:
    """What an authenticator app shows at `at`."""
    return pyotp.TOTP(secret).at(int(at))


def next_code(secret: str) -> str:
    """The next step's code: the current one was spent by the verification (a code is good once)."""
    return code_at(secret, time.time() + totp.STEP_S)


async def test_enrolment_shows_the_secret_once_and_stores_only_ciphertext(
        api: Client, tenant: Tenant, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    response = await api.post("/v1/me/mfa/totp", headers=tenant.headers())

    body = response.json()
    assert response.status_code == 201 and body["status"] == "pending"
    assert body["otpauth_uri"].startswith("otpauth://totp/Causeloop:") and f"secret={body['secret']}" in \
        body["otpauth_uri"]
    store = EventStore(settings, pool_size=1)
    try:
        raw = b"".join(n.state for n in store.recorder.select_events(mfa_stream(tenant.user_id)))
    finally:
        store.close()
    assert b"secret_ciphertext" in raw and body["secret"].encode() not in raw
    assert body["secret"] not in caplog.text


async def test_a_wrong_code_is_422_and_a_right_one_activates(api: Client, tenant: Tenant) -> None:
    secret = await enrol(api, tenant.headers())

    wrong = await api.post("/v1/me/mfa/totp/verify", json={"code": "000000" if code_at(
        secret, time.time()) != "000000" else "111111"}, headers=tenant.headers())
    right = await api.post("/v1/me/mfa/totp/verify", json={"code": code_at(secret, time.time())},
                           headers=tenant.headers())
    replayed = await api.post("/v1/me/mfa/totp/verify", json={"code": code_at(secret, time.time())},
                              headers=tenant.headers())

    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "invalid_mfa_code"
    assert right.status_code == 200 and right.json() == {"status": "active"}
    assert replayed.status_code == 422, "a code is accepted once"


async def test_too_many_wrong_codes_are_rate_limited(api: Client, tenant: Tenant) -> None:
    secret = await enrol(api, tenant.headers())
    wrong = "000000" if code_at(secret, time.time()) != "000000" else "111111"

    statuses = [(await api.post("/v1/me/mfa/totp/verify", json={"code": wrong}, headers=tenant.headers())).status_code
                for _ in range(6)]
    right = await api.post("/v1/me/mfa/totp/verify", json={"code": code_at(secret, time.time())},
                           headers=tenant.headers())

    assert statuses == [422] * 5 + [429]
    assert right.status_code == 429 and "retry-after" in right.headers


async def test_with_active_totp_sign_in_needs_the_code_and_the_token_then_carries_mfa(
        api: Client, tenant: Tenant) -> None:
    secret = await activate(api, tenant.headers())

    without = await signed_in(api, tenant)
    wrong = await signed_in(api, tenant, mfa_code="000000" if next_code(secret) != "000000" else "111111")
    with_code = await signed_in(api, tenant, mfa_code=next_code(secret))

    assert without.status_code == 403 and without.json()["error"]["code"] == "mfa_required"
    assert wrong.status_code == 422
    assert with_code.status_code == 200, with_code.text
    claims = jwt.decode(with_code.json()["access_token"], options={"verify_signature": False})
    assert claims["amr"] == ["pwd", "mfa"]
    refreshed = await api.post("/v1/auth/refresh", json={"refresh_token": with_code.json()["refresh_token"]})
    assert jwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})["amr"] == ["pwd", "mfa"]


async def test_removing_totp_needs_a_code_or_a_token_with_mfa(api: Client, tenant: Tenant) -> None:
    secret = await activate(api, tenant.headers())

    refused = await api.delete("/v1/me/mfa/totp", headers=tenant.headers())
    mfa_token = (await signed_in(api, tenant, mfa_code=next_code(secret))).json()
    removed = await api.delete("/v1/me/mfa/totp", headers=bearer(mfa_token))
    again = await signed_in(api, tenant)

    assert refused.status_code == 403 and refused.json()["error"]["code"] == "mfa_required"
    assert removed.status_code == 204
    assert again.status_code == 200, "without TOTP, sign-in needs no code"


async def test_when_the_workspace_requires_mfa_tokens_without_it_reach_only_the_mfa_routes(
        api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    plain = (await signed_in(api, tenant)).json()
    switched = await api.patch("/v1/workspace", json={"mfa_required": True}, headers=tenant.headers(Role.OWNER))
    assert switched.status_code == 200, switched.text

    me = await api.get("/v1/workspace", headers=bearer(plain))
    blocked = await api.get("/v1/issues", headers=bearer(plain))
    elsewhere = await api.get("/v1/issues", headers=other_tenant.headers())
    secret = await activate(api, bearer(plain))
    with_mfa = (await signed_in(api, tenant, mfa_code=next_code(secret))).json()
    allowed = await api.get("/v1/issues", headers=bearer(with_mfa))

    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "mfa_required"
    assert me.status_code == 403, "workspace routes are not exempt"
    assert elsewhere.status_code == 200, "other workspaces are not affected"
    assert allowed.status_code == 200


async def test_an_enrolment_response_is_never_stored_for_idempotent_replay(api: Client, tenant: Tenant) -> None:
    headers = {**tenant.headers(), "Idempotency-Key": "enrol-once"}

    first = await api.post("/v1/me/mfa/totp", headers=headers)
    second = await api.post("/v1/me/mfa/totp", headers=headers)

    assert first.status_code == second.status_code == 201
    assert "idempotency-replayed" not in second.headers, "a replay would mean the secret rests in idempotency_keys"
    assert first.json()["secret"] != second.json()["secret"]
