"""Internal services subscribe to `<prefix>.<workspace_id>.issue.>` and get every issue event, in order."""

from __future__ import annotations

import asyncio

import msgspec
import nats
import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


async def test_a_plain_nats_subscriber_receives_each_issue_event_in_order_with_the_documented_payload(
        api: AsyncTestClient, tenant: Tenant, settings: Settings) -> None:  # type: ignore[type-arg]
    received: asyncio.Queue[nats.aio.msg.Msg] = asyncio.Queue()
    nc = await nats.connect(settings.nats_url)
    await nc.subscribe(f"{settings.subject_prefix}.{tenant.workspace_id}.issue.>", cb=received.put)
    await nc.flush()  # the server knows the subscription before the first event exists

    created = (await api.post("/v1/issues", json={"title": "Disk full"}, headers=tenant.headers())).json()
    await api.post(f"/v1/issues/{created['id']}/comments", json={"body": "again"}, headers=tenant.headers())
    await api.post(f"/v1/issues/{created['id']}/close", headers=tenant.headers())
    messages = [await asyncio.wait_for(received.get(), 10) for _ in range(3)]
    await nc.close()

    payloads = [msgspec.json.decode(message.data) for message in messages]
    assert [p["type"] for p in payloads] == ["IssueOpened", "IssueCommented", "IssueClosed"]
    assert [m.subject.rsplit(".", 1)[1] for m in messages] == ["IssueOpened", "IssueCommented", "IssueClosed"]
    assert [p["stream_version"] for p in payloads] == [1, 2, 3]
    assert payloads[0]["position"] < payloads[1]["position"] < payloads[2]["position"]
    assert all(p["workspace_id"] == tenant.workspace_id and p["stream_id"] == created["id"] for p in payloads)
    assert all(m.headers and m.headers["Nats-Msg-Id"] == p["id"] for m, p in zip(messages, payloads, strict=True))
    assert payloads[0]["data"]["title"] == "Disk full"
    assert payloads[0]["actor"] == {"kind": "user", "id": tenant.user_id}
    assert set(payloads[0]) >= {"id", "type", "schema_version", "workspace_id", "stream_id", "stream_version",
                                "position", "occurred_at", "actor", "data"}
