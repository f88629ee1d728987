"""A slow receiver with a backlog cannot take every sending slot: each endpoint has at most
WEBHOOKS_PER_ENDPOINT_CONCURRENCY deliveries in flight per sender, so another endpoint's delivery goes out while the
slow one's backlog is still being answered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from api.app import create_app
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.webhook_receiver import Receiver
from tests.e2e.webhooks_support import Clock, DeliveryWorker, create_webhook, open_issue

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
SLOTS = 6
PER_ENDPOINT = 2
BACKLOG = 8


@pytest.fixture(scope="module")
def fair_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, webhooks_allow_private_targets=True, webhooks_timeout_s=5.0,
                                   webhooks_poll_interval_s=0.05, webhooks_concurrency=SLOTS,
                                   webhooks_per_endpoint_concurrency=PER_ENDPOINT)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver(hang_s=1.5) as running:  # "hang": a slow receiver that still answers 200, inside the timeout
        running.behaviour["/slow"] = "hang"
        yield running


@pytest.fixture
async def hooks(fair_settings: Settings, workers: Workers) -> AsyncIterator[Client]:
    with DeliveryWorker(fair_settings, Clock()):
        async with AsyncTestClient(create_app(fair_settings, configure_logging=False)) as client:
            yield client


async def test_a_slow_endpoints_backlog_leaves_slots_for_the_others(
        hooks: Client, tenant: Tenant, receiver: Receiver) -> None:
    await create_webhook(hooks, tenant, receiver.url("/slow"))
    for n in range(BACKLOG):
        await open_issue(hooks, tenant, f"Backlog {n}")
    await create_webhook(hooks, tenant, receiver.url("/fast"))
    await open_issue(hooks, tenant, "For both endpoints")

    receiver.wait_for("/fast", 1)
    slow_done = len(receiver.received["/slow"])
    # Taking every slot, the slow endpoint would have answered a whole round (SLOTS) before the fast one got one.
    assert slow_done <= PER_ENDPOINT, f"the fast endpoint waited for {slow_done} slow deliveries"

    receiver.wait_for("/slow", BACKLOG + 1, timeout=30)  # and the backlog is still delivered, every one
    assert len(receiver.received["/fast"]) == 1
