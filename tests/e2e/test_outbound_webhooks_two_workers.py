"""Two delivery worker processes at once (as compose.yaml runs them): one decides, both send, and no delivery is
sent twice, because a due delivery is claimed with FOR UPDATE SKIP LOCKED under a lease."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from adapters.event_store import EventStore
from adapters.ids import new_uuid
from adapters.settings import Settings
from api.app import create_app
from domain.identity.roles import Role
from domain.ids import WorkspaceId
from domain.issues.issue import open_issue
from tests.builders import meta
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.webhook_receiver import Receiver
from tests.e2e.webhooks_support import Clock, DeliveryWorker, create_webhook, eventually

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ISSUES = 40
CONCURRENCY = 4


@pytest.fixture(scope="module")
def pair_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, webhooks_allow_private_targets=True, webhooks_concurrency=CONCURRENCY,
                                   webhooks_timeout_s=5.0, webhooks_poll_interval_s=0.05)


@pytest.fixture(scope="module")
def two_workers(pair_settings: Settings, workers: Workers) -> Iterator[None]:
    with DeliveryWorker(pair_settings, Clock()), DeliveryWorker(pair_settings, Clock()):
        yield


@pytest.fixture
async def api(pair_settings: Settings, two_workers: None) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(pair_settings, configure_logging=False)) as client:
        yield client


async def test_two_workers_share_the_sending_and_send_each_delivery_once(
        api: Client, tenant: Tenant, identity_store: EventStore) -> None:
    with Receiver(hang_s=0.2) as receiver:
        receiver.behaviour["/pair"] = "hang"  # every answer takes 0.2 s: one worker's slots fill up
        webhook = await create_webhook(api, tenant, receiver.url("/pair"))
        at = meta(workspace_id=WorkspaceId(tenant.workspace_id))
        opened = [open_issue(issue_id=new_uuid(), meta=msgspec.structs.replace(at, now=at.now), title=f"burst {i}")
                  for i in range(ISSUES)]
        await asyncio.to_thread(identity_store.append, opened)

        got = receiver.wait_for("/pair", ISSUES, timeout=60)

        async def all_succeeded() -> list[dict[str, object]] | None:
            found = (await api.get(f"/v1/webhooks/{webhook['id']}/deliveries?limit=100",
                                   headers=tenant.headers(Role.TENANT_ADMIN))).json()
            data: list[dict[str, object]] = found.get("data", [])
            return data if len(data) == ISSUES and all(d["status"] == "succeeded" for d in data) else None

        settled = await eventually(all_succeeded, timeout=60)

    event_ids = [item.headers["x-causeloop-event-id"] for item in got]
    assert len(event_ids) == ISSUES and len(set(event_ids)) == ISSUES
    assert {json.loads(item.body)["data"]["title"] for item in got} == {f"burst {i}" for i in range(ISSUES)}
    assert all(d["attempt_count"] == 1 for d in settled)
    assert receiver.most_in_flight > CONCURRENCY  # more than one worker's slots: both were sending
