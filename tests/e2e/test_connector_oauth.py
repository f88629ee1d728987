"""OAuth connectors through the public API: start with a signed 10-minute state, the callback exchanges the code
at the provider's token endpoint (the local provider server) and connects the connector."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from adapters.providers import oauth
from adapters.settings import Settings
from api.app import create_app
from domain.identity.roles import Role
from tests.e2e.conftest import Tenant, Workers
from tests.fake_providers import Provider, serving

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ADMIN = Role.TENANT_ADMIN


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[str, Provider]]:
    with serving() as running:
        yield running


@pytest.fixture
async def oauth_api(settings: Settings, workers: Workers, provider: tuple[str, Provider]
                    ) -> AsyncIterator[tuple[Client, Settings]]:
    base, _ = provider
    clients = {"linear": {"client_id": "cl-1", "client_secret": "s3cret", "authorize_url": f"{base}/authorize",
                          "token_url": f"{base}/oauth/token"}}
    configured = msgspec.structs.replace(settings, connector_oauth_clients=msgspec.json.encode(clients).decode(),
                                         public_url="https://api.example.test", app_url="https://app.example.test")
    async with AsyncTestClient(create_app(configured, configure_logging=False)) as client:
        yield client, configured


async def linear(api: Client, tenant: Tenant) -> dict[str, Any]:
    created = await api.post("/v1/connectors", json={"type": "linear"}, headers=tenant.headers(ADMIN))
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_start_then_callback_connects_the_connector(oauth_api: tuple[Client, Settings], tenant: Tenant,
                                                          provider: tuple[str, Provider]) -> None:
    api, _ = oauth_api
    base, state = provider
    con = await linear(api, tenant)
    started = await api.post(f"/v1/connectors/{con['id']}/oauth/start", headers=tenant.headers(ADMIN))
    url = urlparse(started.json()["authorize_url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}

    back = await api.get("/v1/connectors/oauth/callback", params={"code": "good-code", "state": query["state"]},
                         follow_redirects=False)
    after = (await api.get(f"/v1/connectors/{con['id']}", headers=tenant.headers(ADMIN))).json()

    assert con["status"] == "pending_auth" and con["has_credentials"] is False
    assert started.status_code == 200 and f"{url.scheme}://{url.netloc}{url.path}" == f"{base}/authorize"
    assert query["client_id"] == "cl-1" and query["response_type"] == "code"
    assert query["redirect_uri"] == "https://api.example.test/v1/connectors/oauth/callback"
    expires = datetime.fromisoformat(started.json()["expires_at"])
    assert timedelta(minutes=9) < expires - datetime.now(UTC) <= timedelta(minutes=10)
    assert back.status_code == 302
    assert back.headers["location"] == \
        f"https://app.example.test/integrations?connector_id={con['id']}&oauth=connected"
    token_call = next(r for r in state.requests if r[0] == "/oauth/token")
    assert token_call[1]["redirect_uri"] == [query["redirect_uri"]]
    assert after["status"] == "connected" and after["has_credentials"] is True
    assert "lin_oauth_access" not in str(after)


async def test_an_expired_or_altered_state_is_refused(oauth_api: tuple[Client, Settings], tenant: Tenant) -> None:
    api, settings = oauth_api
    con = await linear(api, tenant)
    flow = oauth.OAuthState(connector_id=con["id"], workspace_id=tenant.workspace_id, actor_id=tenant.user_id)
    expired = oauth.mint_state(settings, flow, datetime.now(UTC) - timedelta(minutes=11))
    fresh = oauth.mint_state(settings, flow)
    for bad in (expired, fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB"), "nonsense"):
        response = await api.get("/v1/connectors/oauth/callback", params={"code": "good-code", "state": bad},
                                 follow_redirects=False)
        assert response.status_code == 400 and response.json()["error"]["details"]["field"] == "state"
    still = (await api.get(f"/v1/connectors/{con['id']}", headers=tenant.headers(ADMIN))).json()
    assert still["status"] == "pending_auth"


async def test_a_refused_code_or_a_denial_goes_back_to_the_app_unconnected(
        oauth_api: tuple[Client, Settings], tenant: Tenant) -> None:
    api, settings = oauth_api
    con = await linear(api, tenant)
    state = oauth.mint_state(settings, oauth.OAuthState(connector_id=con["id"], workspace_id=tenant.workspace_id,
                                                        actor_id=tenant.user_id))
    refused = await api.get("/v1/connectors/oauth/callback", params={"code": "bad", "state": state},
                            follow_redirects=False)
    denied = await api.get("/v1/connectors/oauth/callback", params={"error": "access_denied", "state": state},
                           follow_redirects=False)
    assert refused.status_code == 302 and "oauth=failed" in refused.headers["location"]
    assert denied.status_code == 302 and "oauth=denied" in denied.headers["location"]
    still = (await api.get(f"/v1/connectors/{con['id']}", headers=tenant.headers(ADMIN))).json()
    assert still["status"] == "pending_auth"


async def test_api_key_types_have_no_oauth(oauth_api: tuple[Client, Settings], tenant: Tenant) -> None:
    api, _ = oauth_api
    created = await api.post("/v1/connectors", json={"type": "custom_api"}, headers=tenant.headers(ADMIN))
    response = await api.post(f"/v1/connectors/{created.json()['id']}/oauth/start", headers=tenant.headers(ADMIN))
    assert response.status_code == 422 and response.json()["error"]["code"] == "oauth_not_supported"
