"""Outbound webhooks through the public API, delivered by the real worker to a local receiver.

The relay and projectors run as in every e2e test; the delivery worker runs on a thread of its own with a clock the
tests move (24 h of retries without waiting 24 h) and short timeouts and backoff.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import msgspec
import psycopg
import pytest
from litestar.testing import AsyncTestClient

from adapters.postgres import create_pool
from adapters.settings import Settings
from api.app import create_app
from cli.main import main
from commands.webhooks import WebhookCommands
from domain.identity.roles import Role
from projections.webhooks.queries import ConnectorSecret, connector_secrets
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.webhook_receiver import Receiver
from tests.e2e.webhooks_support import (
    Clock,
    DeliveryWorker,
    create_webhook,
    deliveries,
    eventually,
    open_issue,
    until_status,
    verify,
)

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ADMIN = Role.TENANT_ADMIN
T = TypeVar("T")


@pytest.fixture(scope="module")
def hook_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, webhooks_allow_private_targets=True, webhooks_timeout_s=0.5,
                                   webhooks_retry_base_s=0.2, webhooks_poll_interval_s=0.05)


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver(hang_s=2.0) as running:
        yield running


@pytest.fixture(scope="module")
def delivery_worker(hook_settings: Settings, clock: Clock, workers: Workers) -> Iterator[DeliveryWorker]:
    with DeliveryWorker(hook_settings, clock) as running:
        yield running


@pytest.fixture
async def hooks(hook_settings: Settings, delivery_worker: DeliveryWorker, clock: Clock) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(hook_settings, configure_logging=False)) as client:
        yield client
    clock.offset = timedelta()


async def test_a_created_issue_is_delivered_signed_with_the_documented_headers_and_body(
        hooks: Client, tenant: Tenant, receiver: Receiver) -> None:
    webhook = await create_webhook(hooks, tenant, receiver.url("/signed"), description="ops")
    issue_id = await open_issue(hooks, tenant)

    (got,) = receiver.wait_for("/signed")
    body = json.loads(got.body)
    listed = await hooks.get("/v1/webhooks", headers=tenant.headers(ADMIN))
    shown = await hooks.get(f"/v1/webhooks/{webhook['id']}", headers=tenant.headers(ADMIN))
    delivery = await eventually(until_status(hooks, tenant, webhook["id"], "succeeded"))

    assert webhook["id"].startswith("whk_") and webhook["secret"].startswith("whsec_")
    assert webhook["event_types"] == ["issue.created"] and webhook["status"] == "active"
    assert verify(webhook["secret"], got.body, got.headers["x-causeloop-signature"])
    assert "," not in got.headers["x-causeloop-signature"]
    assert not verify("whsec_wrong", got.body, got.headers["x-causeloop-signature"])
    assert set(body) == {"id", "type", "created_at", "workspace_id", "data"}
    assert body["type"] == "issue.created" and body["workspace_id"] == tenant.workspace_id
    assert body["data"]["issue_id"] == issue_id and body["data"]["title"] == "Checkout fails"
    assert got.headers["x-causeloop-event-id"] == body["id"] == delivery["event_id"]
    assert abs(int(got.headers["x-causeloop-timestamp"]) - time.time()) < 60
    assert got.headers["content-type"] == "application/json"
    assert "secret" not in shown.json() and all("secret" not in item for item in listed.json()["data"])
    assert shown.headers["etag"] == '"1"'
    assert delivery["kind"] == "event" and delivery["event_type"] == "issue.created"
    (attempt,) = delivery["attempts"]
    assert attempt["status_code"] == 200 and attempt["succeeded"] and attempt["latency_ms"] >= 0
    assert attempt["response_body"] == '{"ok": true}'


async def test_only_subscribed_types_are_delivered_and_a_resolution_is_an_update_and_a_resolved(
        hooks: Client, tenant: Tenant, receiver: Receiver) -> None:
    await create_webhook(hooks, tenant, receiver.url("/typed"), ["issue.resolved", "issue.updated"])
    filtered = await create_webhook(hooks, tenant, receiver.url("/by-connector"), ["issue.created"],
                                    connector_id="con_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    issue_id = await open_issue(hooks, tenant)
    edited = await hooks.patch(f"/v1/issues/{issue_id}", json={"status": "resolved"}, headers=tenant.headers(ADMIN))
    assert edited.status_code == 200, edited.text

    got = receiver.wait_for("/typed", 2)
    types = sorted(json.loads(item.body)["type"] for item in got)

    assert types == ["issue.resolved", "issue.updated"]
    assert len({item.headers["x-causeloop-event-id"] for item in got}) == 2
    assert await deliveries(hooks, tenant, filtered["id"]) == []  # issue events come through no connector


async def test_a_500_is_retried_with_backoff_and_every_attempt_is_recorded(
        hooks: Client, tenant: Tenant, receiver: Receiver) -> None:
    receiver.behaviour["/flaky"] = [500, 503]
    webhook = await create_webhook(hooks, tenant, receiver.url("/flaky"))
    await open_issue(hooks, tenant)

    got = receiver.wait_for("/flaky", 3)
    delivery = await eventually(until_status(hooks, tenant, webhook["id"], "succeeded", 3))

    assert len({item.headers["x-causeloop-event-id"] for item in got}) == 1
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 200]
    assert [a["succeeded"] for a in delivery["attempts"]] == [False, False, True]
    assert delivery["attempts"][0]["error"] == "HTTP 500"
    assert len(delivery["attempts"][0]["response_body"]) == 1024  # truncated
    assert delivery["attempt_count"] == 3 and delivery["last_status_code"] == 200


async def test_a_hanging_receiver_times_out_and_the_delivery_is_retried(
        hooks: Client, tenant: Tenant, receiver: Receiver) -> None:
    receiver.behaviour["/slow"] = "hang"
    webhook = await create_webhook(hooks, tenant, receiver.url("/slow"))
    await open_issue(hooks, tenant)

    pending = await eventually(until_status(hooks, tenant, webhook["id"], "pending", 1))
    receiver.behaviour["/slow"] = "ok"
    delivered = await eventually(until_status(hooks, tenant, webhook["id"], "succeeded"))

    first = pending["attempts"][0]
    assert first["status_code"] is None and first["error"].startswith("timed out")
    assert first["latency_ms"] < 2000
    assert delivered["attempts"][-1]["status_code"] == 200


async def test_a_ping_is_sent_and_a_delivery_can_be_redelivered_with_the_same_event_id(
        hooks: Client, tenant: Tenant, receiver: Receiver) -> None:
    webhook = await create_webhook(hooks, tenant, receiver.url("/ping"))

    queued = await hooks.post(f"/v1/webhooks/{webhook['id']}/test", headers=tenant.headers(ADMIN))
    (ping,) = receiver.wait_for("/ping")
    await eventually(until_status(hooks, tenant, webhook["id"], "succeeded"))
    again = await hooks.post(f"/v1/webhooks/{webhook['id']}/deliveries/{queued.json()['delivery_id']}/redeliver",
                             headers=tenant.headers(ADMIN))
    first, second = receiver.wait_for("/ping", 2)
    redelivered = await eventually(until_status(hooks, tenant, webhook["id"], "succeeded", 2))
    unknown = await hooks.post(f"/v1/webhooks/{webhook['id']}/deliveries/dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV/redeliver",
                               headers=tenant.headers(ADMIN))

    assert queued.status_code == 202 and queued.json()["delivery_id"].startswith("dlv_")
    assert json.loads(ping.body)["type"] == "webhook.ping"
    assert verify(webhook["secret"], ping.body, ping.headers["x-causeloop-signature"])
    assert again.status_code == 202, again.text
    assert first.headers["x-causeloop-event-id"] == second.headers["x-causeloop-event-id"]
    assert first.body == second.body
    assert redelivered["id"] == queued.json()["delivery_id"] and redelivered["redeliveries"] == 1
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


async def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
        hooks: Client, tenant: Tenant, receiver: Receiver, clock: Clock) -> None:
    webhook = await create_webhook(hooks, tenant, receiver.url("/rotated"))
    rotated = await hooks.post(f"/v1/webhooks/{webhook['id']}/rotate", headers=tenant.headers(ADMIN))
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]

    await open_issue(hooks, tenant, "during the overlap")
    (during,) = receiver.wait_for("/rotated")
    clock.offset = timedelta(hours=25)
    await open_issue(hooks, tenant, "after the overlap")
    _, after = receiver.wait_for("/rotated", 2)

    assert new_secret.startswith("whsec_") and new_secret != webhook["secret"]
    assert rotated.json()["previous_secret_valid_until"] is not None
    assert verify(new_secret, during.body, during.headers["x-causeloop-signature"])
    assert verify(webhook["secret"], during.body, during.headers["x-causeloop-signature"])
    assert during.headers["x-causeloop-signature"].count(",") == 1
    assert verify(new_secret, after.body, after.headers["x-causeloop-signature"])
    assert not verify(webhook["secret"], after.body, after.headers["x-causeloop-signature"])


async def test_an_endpoint_failing_for_24_hours_is_disabled_and_can_be_enabled_again(
        hooks: Client, tenant: Tenant, receiver: Receiver, clock: Clock) -> None:
    receiver.behaviour["/down"] = "fail"
    webhook = await create_webhook(hooks, tenant, receiver.url("/down"))
    await open_issue(hooks, tenant)
    await eventually(until_status(hooks, tenant, webhook["id"], "pending", 2))

    clock.offset = timedelta(hours=24, minutes=1)

    async def disabled() -> dict[str, Any] | None:
        shown = (await hooks.get(f"/v1/webhooks/{webhook['id']}", headers=tenant.headers(ADMIN))).json()
        return shown if shown["status"] == "disabled" else None

    shown = await disabled() or await eventually(disabled)
    failed = await eventually(until_status(hooks, tenant, webhook["id"], "failed"))
    enabled = await hooks.patch(f"/v1/webhooks/{webhook['id']}", json={"status": "active"},
                                headers=tenant.headers(ADMIN))

    assert shown["disabled_reason"] == "every delivery failed for 24 h"
    assert all(not attempt["succeeded"] for attempt in failed["attempts"]) and len(failed["attempts"]) >= 3
    assert enabled.status_code == 200 and enabled.json()["status"] == "active"
    assert enabled.json()["disabled_reason"] is None


async def test_urls_with_credentials_or_bad_schemes_are_refused(hooks: Client, tenant: Tenant,
                                                                receiver: Receiver) -> None:
    for url in (receiver.url("/x").replace("http://", "http://user:pw@"), "ftp://example.com/hook",
                "https:///nohost", "https://example.com/hook#frag"):
        response = await hooks.post("/v1/webhooks", json={"url": url, "event_types": ["issue.created"]},
                                    headers=tenant.headers(ADMIN))
        assert response.status_code == 400, (url, response.text)
        assert response.json()["error"]["details"]["field"] == "url"


async def test_unknown_event_types_and_ids_are_refused_and_other_workspaces_see_nothing(
        hooks: Client, tenant: Tenant, other_tenant: Tenant, receiver: Receiver) -> None:
    webhook = await create_webhook(hooks, tenant, receiver.url("/mine"))
    unknown_type = await hooks.post("/v1/webhooks", json={"url": receiver.url("/x"), "event_types": ["issue.eaten"]},
                                    headers=tenant.headers(ADMIN))
    none = await hooks.post("/v1/webhooks", json={"url": receiver.url("/x"), "event_types": []},
                            headers=tenant.headers(ADMIN))
    theirs = await hooks.get(f"/v1/webhooks/{webhook['id']}", headers=other_tenant.headers(ADMIN))
    malformed = await hooks.get("/v1/webhooks/whk_nope", headers=tenant.headers(ADMIN))
    analyst = await hooks.get("/v1/webhooks", headers=tenant.headers(Role.ANALYST))
    lower = await create_webhook(hooks, tenant, receiver.url("/x"), connector_id="con_01kv1px3nr96xjrgd48nnhh431")
    not_ulid = await hooks.post("/v1/webhooks", json={"url": receiver.url("/x"), "event_types": ["issue.created"],
                                                      "connector_id": "con_91KV1PX3NR96XJRGD48NNHH431"},
                                headers=tenant.headers(ADMIN))
    deleted = await hooks.delete(f"/v1/webhooks/{webhook['id']}", headers=tenant.headers(ADMIN))
    gone = await hooks.get(f"/v1/webhooks/{webhook['id']}", headers=tenant.headers(ADMIN))

    assert unknown_type.status_code == 400 and none.status_code == 400
    assert theirs.status_code == 404 and malformed.status_code == 404
    assert analyst.status_code == 403
    assert lower["connector_id"] == "con_01KV1PX3NR96XJRGD48NNHH431"
    assert not_ulid.status_code == 400 and not_ulid.json()["error"]["details"]["field"] == "connector_id"
    assert deleted.status_code == 204 and gone.status_code == 404


async def test_an_operator_redelivers_with_the_cli(hooks: Client, tenant: Tenant, receiver: Receiver,
                                                   settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    webhook = await create_webhook(hooks, tenant, receiver.url("/cli"))
    queued = (await hooks.post(f"/v1/webhooks/{webhook['id']}/test", headers=tenant.headers(ADMIN))).json()
    receiver.wait_for("/cli")
    await eventually(until_status(hooks, tenant, webhook["id"], "succeeded"))
    environ = {"DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema,
               "NATS_URL": settings.nats_url, "JWT_SECRET": settings.jwt_secret}

    code = await asyncio.to_thread(main, ["webhooks", "redeliver", queued["delivery_id"]], environ)
    first, second = receiver.wait_for("/cli", 2)
    unknown = await asyncio.to_thread(main, ["webhooks", "redeliver", "dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV"], environ)

    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out.splitlines()[0])["delivery_id"] == queued["delivery_id"]
    assert first.headers["x-causeloop-event-id"] == second.headers["x-causeloop-event-id"]
    assert unknown == 2 and "no delivery dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV" in out.err


async def test_a_ping_retried_with_the_same_idempotency_key_is_one_ping(hooks: Client, tenant: Tenant,
                                                                        receiver: Receiver) -> None:
    webhook = await create_webhook(hooks, tenant, receiver.url("/once-ping"))
    headers = {**tenant.headers(ADMIN), "Idempotency-Key": "ping-1"}

    first = await hooks.post(f"/v1/webhooks/{webhook['id']}/test", headers=headers)
    again = await hooks.post(f"/v1/webhooks/{webhook['id']}/test", headers=headers)
    await eventually(until_status(hooks, tenant, webhook["id"], "succeeded"))

    assert first.status_code == again.status_code == 202
    assert first.json()["delivery_id"] == again.json()["delivery_id"]
    assert len(await deliveries(hooks, tenant, webhook["id"])) == 1
    assert len(receiver.received["/once-ping"]) == 1


async def test_deleting_a_webhook_stops_its_pending_retries(hooks: Client, tenant: Tenant, receiver: Receiver,
                                                            settings: Settings) -> None:
    receiver.behaviour["/gone"] = "fail"
    webhook = await create_webhook(hooks, tenant, receiver.url("/gone"))
    await open_issue(hooks, tenant)
    pending = await eventually(until_status(hooks, tenant, webhook["id"], "pending", 1))

    deleted = await hooks.delete(f"/v1/webhooks/{webhook['id']}", headers=tenant.headers(ADMIN))

    async def cancelled() -> tuple[str, str] | None:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            row = conn.execute(f'SELECT status, last_error FROM "{settings.database_schema}".webhook_deliveries'
                               " WHERE id = %s", (pending["id"],)).fetchone()
        return (str(row[0]), str(row[1])) if row is not None and row[0] != "pending" else None

    assert deleted.status_code == 204
    assert await eventually(cancelled) == ("failed", "the webhook was deleted")


async def test_a_connectors_webhook_secret_is_there_for_verifying_its_inbound_deliveries(
        hooks: Client, tenant: Tenant, receiver: Receiver, hook_settings: Settings) -> None:
    connector = "con_01KV1PX3NR96XJRGD48NNHH4ZZ"
    webhook = await create_webhook(hooks, tenant, receiver.url("/inbound-setup"), connector_id=connector)
    pool = create_pool(hook_settings, min_size=1, max_size=1, name="inbound")
    await pool.open()
    try:
        async def found() -> list[ConnectorSecret] | None:
            async with pool.connection() as conn:
                secrets = await connector_secrets(conn, connector)
            return secrets or None

        (secret,) = await eventually(found)
        async with pool.connection() as conn:
            none = await connector_secrets(conn, "con_01KV1PX3NR96XJRGD48NNHH400")
    finally:
        await pool.close()
    commands: WebhookCommands = hooks.app.state.webhook_commands

    assert (secret.workspace_id, secret.webhook_id) == (tenant.workspace_id, webhook["id"])
    assert commands.open_sealed(secret.webhook_id, secret.secret_ciphertext) == webhook["secret"]
    assert none == []


async def test_the_delivery_workers_decisions_are_watched_like_a_read_model(hooks: Client, tenant: Tenant,
                                                                            receiver: Receiver) -> None:
    await create_webhook(hooks, tenant, receiver.url("/watched"))
    await open_issue(hooks, tenant)
    receiver.wait_for("/watched")

    metrics = (await hooks.get("/metrics")).text
    position = next(line for line in metrics.splitlines()
                    if line.startswith('causeloop_projection_position{projection="webhook_dispatch"}'))

    assert int(position.rsplit(" ", 1)[1]) > 0
    assert 'causeloop_projection_parked_messages{projection="webhook_dispatch"} 0' in metrics
