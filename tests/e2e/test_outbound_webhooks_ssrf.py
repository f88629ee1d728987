"""Webhook targets outside development: https only, and no private, loopback or link-local address, checked when
an endpoint is saved and again at every connect, after DNS (a name that resolves to a public address when saved
and to 127.0.0.1 when the worker connects is refused, and nothing reaches the loopback receiver)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from api.app import create_app
from domain.identity.roles import Role
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.webhook_receiver import Receiver
from tests.e2e.webhooks_support import Clock, DeliveryWorker, create_webhook, deliveries, eventually, open_issue

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ADMIN = Role.TENANT_ADMIN
PUBLIC = "93.184.216.34"


def resolver_of(table: dict[str, str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"{host} does not resolve here")
        return [table[host]]
    return resolve


@pytest.fixture(scope="module")
def strict_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, webhooks_allow_private_targets=False, webhooks_timeout_s=0.5,
                                   webhooks_retry_base_s=0.2, webhooks_poll_interval_s=0.05)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def strict_worker(strict_settings: Settings, workers: Workers) -> Iterator[DeliveryWorker]:
    """The worker's DNS says `rebind.test` is 127.0.0.1 (the API's said it was public)."""
    resolver = resolver_of({"rebind.test": "127.0.0.1", "localhost": "127.0.0.1"})
    with DeliveryWorker(strict_settings, Clock(), resolver) as running:
        yield running


@pytest.fixture
async def strict(strict_settings: Settings, strict_worker: DeliveryWorker) -> AsyncIterator[Client]:
    app = create_app(strict_settings, configure_logging=False)
    app.state.webhook_resolver = resolver_of({"rebind.test": PUBLIC, "hooks.example.test": PUBLIC,
                                              "localhost": "127.0.0.1", "meta.test": "169.254.169.254"})
    async with AsyncTestClient(app) as client:
        yield client


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://localhost/hook", "https://10.1.2.3/hook", "https://192.168.0.10/hook",
    "https://169.254.169.254/latest/meta-data", "https://meta.test/hook", "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook", "https://[fe80::1]/hook", "https://0.0.0.0/hook", "https://100.64.0.1/hook",
    "http://hooks.example.test/hook", "https://user:secret@hooks.example.test/hook", "https://nowhere.test/hook",
])
async def test_a_private_loopback_or_link_local_target_or_plain_http_is_refused_when_saved(
        strict: Client, tenant: Tenant, url: str) -> None:
    response = await strict.post("/v1/webhooks", json={"url": url, "event_types": ["issue.created"]},
                                 headers=tenant.headers(ADMIN))

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["details"]["field"] == "url"


async def test_a_public_https_target_is_accepted_and_cannot_be_moved_to_loopback(strict: Client,
                                                                                tenant: Tenant) -> None:
    webhook = await create_webhook(strict, tenant, "https://hooks.example.test/causeloop")
    moved = await strict.patch(f"/v1/webhooks/{webhook['id']}", json={"url": "https://localhost/x"},
                               headers=tenant.headers(ADMIN))

    assert webhook["url"] == "https://hooks.example.test/causeloop"
    assert moved.status_code == 400 and moved.json()["error"]["details"]["field"] == "url"


async def test_a_name_that_resolves_to_loopback_at_connect_time_is_refused_and_nothing_is_sent(
        strict: Client, tenant: Tenant, receiver: Receiver) -> None:
    connections = receiver.connections
    webhook = await create_webhook(strict, tenant, f"https://rebind.test:{receiver.port}/rebound")
    await open_issue(strict, tenant)

    async def attempted() -> dict[str, Any] | None:
        found = await deliveries(strict, tenant, webhook["id"])
        return found[0] if found and found[0]["attempts"] else None

    delivery = await eventually(attempted)

    (attempt,) = delivery["attempts"][:1]
    assert attempt["status_code"] is None and not attempt["succeeded"]
    assert attempt["error"].startswith("target refused: resolves to 127.0.0.1")
    assert delivery["status"] == "pending"  # retried: DNS may be fixed; each retry is checked again
    assert receiver.connections == connections  # the worker never connected
