"""The loop's outbound webhooks through the public API: pattern.*, recommendation.created and sync.* delivered by the
real delivery worker to a local receiver, from the real pattern detector, recommendation worker and sync worker.

Each worker runs on a thread of its own beside the relay and projectors, as `causeloop up` runs them together.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

import tests.e2e.test_connector_sync as syncing
from adapters.settings import Settings
from api.app import create_app
from domain.identity.roles import Role
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.detector_support import DetectorThread
from tests.e2e.prediction_support import PredictorThread, TestClock
from tests.e2e.recommender_support import MovableClock, RecommenderThread
from tests.e2e.webhook_receiver import Receiver
from tests.e2e.webhooks_support import Clock, DeliveryWorker, create_webhook, deliveries, eventually, verify
from tests.fake_providers import Provider, serving

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ADMIN = Role.TENANT_ADMIN
TIMEOUT = "Timeout calling payments-api after {}ms for order {}"


@pytest.fixture(scope="module")
def hook_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, webhooks_allow_private_targets=True, webhooks_timeout_s=0.5,
                                   webhooks_retry_base_s=0.2, webhooks_poll_interval_s=0.05)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver(hang_s=2.0) as running:
        yield running


@pytest.fixture(scope="module")
def hook_clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def delivery_worker(hook_settings: Settings, hook_clock: Clock, workers: Workers) -> Iterator[DeliveryWorker]:
    with DeliveryWorker(hook_settings, hook_clock) as running:
        yield running


@pytest.fixture
async def hooks(hook_settings: Settings, delivery_worker: DeliveryWorker) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(hook_settings, configure_logging=False)) as client:
        yield client


@pytest.fixture(scope="module")
def detector(settings: Settings, workers: Workers) -> Iterator[DetectorThread]:
    with DetectorThread(settings) as running:
        yield running


@pytest.fixture(scope="module")
def recommender(settings: Settings, workers: Workers) -> Iterator[RecommenderThread]:
    with RecommenderThread(settings, MovableClock()) as running:
        yield running


@pytest.fixture
def recommender_clock(recommender: RecommenderThread, hook_clock: Clock) -> Iterator[MovableClock]:
    recommender.clock.offset = hook_clock.offset = timedelta(0)
    yield recommender.clock
    recommender.clock.offset = hook_clock.offset = timedelta(0)


@pytest.fixture(scope="module")
def predictor(settings: Settings, workers: Workers) -> Iterator[PredictorThread]:
    with PredictorThread(settings, TestClock()) as running:
        yield running


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[str, Provider]]:
    with serving() as running:
        yield running
        running[1].release.set()


@pytest.fixture(scope="module")
def sync_worker(settings: Settings, workers: Workers) -> Iterator[syncing.SyncWorkers]:
    with syncing.SyncWorkers(syncing.sync_settings(settings)) as running:
        yield running


def bodies(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    """What a receiver keeps: each webhook event once (a retry after a slow answer sends it again, same id),
    in the order the events happened (deliveries are sent concurrently, so they may arrive in another)."""
    with receiver.lock:
        received = [json.loads(item.body) for item in receiver.received[path]]
    unique = {body["id"]: body for body in received}
    return sorted(unique.values(), key=lambda body: datetime.fromisoformat(body["created_at"]))


async def test_pattern_and_recommendation_events_are_delivered_from_detection_to_verification(
        hooks: Client, tenant: Tenant, receiver: Receiver, detector: DetectorThread,
        recommender_clock: MovableClock, hook_clock: Clock) -> None:
    patterns_hook = await create_webhook(hooks, tenant, receiver.url("/patterns"),
                                         ["pattern.detected", "pattern.updated"])
    await create_webhook(hooks, tenant, receiver.url("/recommendations"), ["recommendation.created"])
    await create_webhook(hooks, tenant, receiver.url("/verified"), ["recommendation.verified"])
    await create_webhook(hooks, tenant, receiver.url("/issues-only"), ["issue.resolved"])
    issues = []
    for n in range(3):
        response = await hooks.post("/v1/issues", json={
            "title": TIMEOUT.format(3000 + n, 100 + n), "severity": "high",
            "metadata": {"service": "checkout", "domain": "payments"}}, headers=tenant.headers())
        assert response.status_code == 201, response.text
        issues.append(response.json()["id"])

    async def joined_by_both() -> list[dict[str, Any]] | None:
        """Detected; then (issue 2) a member joined and emerging → active; then (issue 3) a member joined."""
        found = bodies(receiver, "/patterns")
        linked = {body["data"].get("issue_id") for body in found if body["data"]["event"] == "IssueLinkedToPattern"}
        return found if linked >= set(issues[1:]) else None

    await eventually(joined_by_both)
    first = receiver.wait_for("/patterns", 4)
    receiver.wait_for("/recommendations", 2)

    async def grouped() -> str | None:  # the issues read model follows the detector asynchronously
        body = (await hooks.get(f"/v1/issues/{issues[-1]}", headers=tenant.headers())).json()
        return body["pattern_id"]  # type: ignore[no-any-return]

    async def proposed() -> list[dict[str, Any]] | None:
        page = (await hooks.get(f"/v1/recommendations?pattern_id={pattern_id}", headers=tenant.headers())).json()
        return page["data"] if len(page["data"]) >= 2 else None  # type: ignore[no-any-return]

    pattern_id = await eventually(grouped)
    listed = await eventually(proposed)
    patterns = bodies(receiver, "/patterns")
    recommendations = bodies(receiver, "/recommendations")
    detected = [body for body in patterns if body["type"] == "pattern.detected"]
    updated = [body["data"] for body in patterns if body["type"] == "pattern.updated"]

    assert verify(patterns_hook["secret"], first[0].body, first[0].headers["x-causeloop-signature"])
    assert len(detected) == 1 and detected[0]["workspace_id"] == tenant.workspace_id
    assert detected[0]["data"]["pattern_id"] == pattern_id and detected[0]["data"]["event"] == "PatternDetected"
    assert detected[0]["data"]["founding_issue_id"] == issues[0] and detected[0]["data"]["name"]
    assert all(data["pattern_id"] == pattern_id for data in updated)
    joined = [data["issue_id"] for data in updated if data["event"] == "IssueLinkedToPattern"]
    assert sorted(joined) == sorted(issues[1:])  # the founding issue's link is part of the detection
    assert any(data["event"] == "PatternUpdated" and data.get("status") == "active" for data in updated)
    assert sorted(body["data"]["recommendation_id"] for body in recommendations) == sorted(
        r["id"] for r in listed)
    assert {body["data"]["rank"] for body in recommendations} == {1, 2}
    assert all(body["type"] == "recommendation.created" and body["data"]["pattern_id"] == pattern_id
               for body in recommendations)
    assert bodies(receiver, "/issues-only") == [] and bodies(receiver, "/verified") == []

    best = next(r for r in listed if r["rank"] == 1)
    for status in ("in_progress", "implemented"):
        moved = await hooks.patch(f"/v1/recommendations/{best['id']}", json={"status": status},
                                  headers=tenant.headers())
        assert moved.status_code == 200, moved.text
    # past the proof window with no matching issue; the verification happens (and is due) 31 days on
    recommender_clock.offset = hook_clock.offset = timedelta(days=31)

    (verified,) = receiver.wait_for("/verified", 1)
    body = json.loads(verified.body)

    async def resolved() -> list[str] | None:
        moves = [b["data"]["status"] for b in bodies(receiver, "/patterns")
                 if b["data"]["event"] == "PatternUpdated" and "status" in b["data"]]
        return moves if moves[-1:] == ["resolved"] else None

    assert body["type"] == "recommendation.verified" and body["data"]["event"] == "RecommendationVerified"
    assert body["data"]["recommendation_id"] == best["id"] and body["data"]["pattern_id"] == pattern_id
    assert await eventually(resolved) == ["active", "mitigating", "watching", "resolved"]


async def test_sync_runs_are_delivered_as_succeeded_and_failed_and_a_connector_endpoint_gets_only_its_own(
        hooks: Client, tenant: Tenant, receiver: Receiver, provider: tuple[str, Provider],
        sync_worker: syncing.SyncWorkers) -> None:
    base, state = provider
    state.add_github(3)
    ours = await syncing.connector(hooks, tenant, base)
    other = await syncing.connector(hooks, tenant, base, "sentry")
    scoped = await create_webhook(hooks, tenant, receiver.url("/sync-ours"), ["sync.succeeded", "sync.failed"],
                                  connector_id=ours["id"])
    await create_webhook(hooks, tenant, receiver.url("/sync-all"), ["sync.succeeded", "sync.failed"])

    succeeded = await syncing.sync(hooks, tenant, ours["id"])
    state.fault("/repos/acme/web/issues", "503", "503")
    failed = await syncing.sync(hooks, tenant, ours["id"])
    elsewhere = await syncing.sync(hooks, tenant, other["id"])

    receiver.wait_for("/sync-all", 3)
    everything = bodies(receiver, "/sync-all")
    # the other connector's run reached /sync-all: its decisions (for every endpoint) are committed
    decided = await eventually(lambda: _settled(hooks, tenant, scoped["id"]))
    own = bodies(receiver, "/sync-ours")
    by_run = {body["data"]["run_id"]: body for body in everything}

    assert succeeded["status"] == "succeeded" and failed["status"] == "failed"
    assert elsewhere["status"] == "succeeded"
    assert set(by_run) == {succeeded["id"], failed["id"], elsewhere["id"]}
    ok, ko = by_run[succeeded["id"]], by_run[failed["id"]]
    assert ok["type"] == "sync.succeeded" and ok["data"]["connector_id"] == ours["id"]
    assert ok["data"]["event"] == "ConnectorSynced" and "cursor" not in ok["data"]
    assert ok["data"]["counts"]["fetched"] == 3 and ok["data"]["counts"]["created"] == 3
    assert ko["type"] == "sync.failed" and ko["data"]["connector_id"] == ours["id"]
    assert "HTTP 503" in ko["data"]["error"] and ko["data"]["consecutive_failures"] == 1
    assert by_run[elsewhere["id"]]["data"]["connector_id"] == other["id"]
    assert sorted(d["event_type"] for d in decided) == ["sync.failed", "sync.succeeded"]
    assert sorted(body["data"]["run_id"] for body in own) == sorted([succeeded["id"], failed["id"]])


async def _settled(api: Client, tenant: Tenant, webhook_id: str) -> list[dict[str, Any]] | None:
    found = await deliveries(api, tenant, webhook_id)
    return found if found and all(d["status"] == "succeeded" for d in found) else None


async def test_an_ingestion_push_is_delivered_as_issue_ingested_with_each_record_outcome(
        hooks: Client, tenant: Tenant, receiver: Receiver) -> None:
    await create_webhook(hooks, tenant, receiver.url("/ingested"), ["issue.ingested"])
    signal = {"source": "pagerduty", "external_id": "PD-7", "title": "Checkout 502", "severity": "p1"}
    pushed = await hooks.post("/v1/ingest/events", json=signal, headers=tenant.headers())
    again = await hooks.post("/v1/ingest/events", json=signal, headers=tenant.headers())
    assert pushed.status_code == again.status_code == 202, (pushed.text, again.text)

    receiver.wait_for("/ingested", 2)
    first, second = bodies(receiver, "/ingested")

    assert first["type"] == second["type"] == "issue.ingested"
    assert first["data"]["ingestion_job_id"] == pushed.json()["job_id"] and first["data"]["event"] == (
        "IngestionJobCompleted")
    assert [(i["issue_id"], i["outcome"]) for i in first["data"]["issues"]] == [(pushed.json()["issue_id"],
                                                                               "created")]
    assert [i["outcome"] for i in second["data"]["issues"]] == ["unchanged"]
    assert len(bodies(receiver, "/ingested")) == 2


async def test_predictions_and_fired_alerts_are_delivered(
        hooks: Client, tenant: Tenant, receiver: Receiver, detector: DetectorThread,
        predictor: PredictorThread) -> None:
    await create_webhook(hooks, tenant, receiver.url("/predictions"),
                         ["prediction.generated", "prediction.alert.fired"])
    rule = await hooks.post("/v1/alert-rules", headers=tenant.headers(), json={
        "name": "everything", "scope": "global", "threshold": {"probability": 0.0, "window_days": 7}})
    assert rule.status_code == 201, rule.text
    now = predictor.clock.now()
    for n, ago in enumerate([8, 6, 4, 2]):
        response = await hooks.post("/v1/issues", headers=tenant.headers(), json={
            "title": f"Connection pool exhausted in billing-api after {10 + n} waiters on shard {n}",
            "severity": "high", "source_created_at": (now - timedelta(days=ago)).isoformat(),
            "metadata": {"service": "billing"}})
        assert response.status_code == 201, response.text

    async def generated_and_fired() -> list[dict[str, Any]] | None:
        found = bodies(receiver, "/predictions")
        windows = {b["data"]["window_days"] for b in found if b["type"] == "prediction.generated"}
        fired = any(b["type"] == "prediction.alert.fired" for b in found)
        return found if windows == {7, 30, 90} and fired else None

    found = await eventually(generated_and_fired, timeout=30)
    generated = [b["data"] for b in found if b["type"] == "prediction.generated"]
    (alert,) = [b["data"] for b in found if b["type"] == "prediction.alert.fired"]
    week = next(p for p in generated if p["window_days"] == 7)

    assert {p["pattern_id"] for p in generated} == {alert["pattern_id"]}
    assert week["event"] == "PredictionGenerated" and 0 < week["probability"] < 1
    assert alert["event"] == "AlertFired" and alert["alert_rule_id"] == rule.json()["id"]
    assert alert["prediction_id"] == week["prediction_id"] and alert["window_days"] == 7
