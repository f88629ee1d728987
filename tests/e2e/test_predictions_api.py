"""Predictions, alert rules and notifications end to end: issues created through the API are grouped by the pattern
detector, the prediction worker (on a clock the test controls) forecasts their recurrence, alert rules fire once
per crossing and stay silent while snoozed, and each user's feed gets the notifications."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.detector_support import DetectorThread
from tests.e2e.polling import eventually
from tests.e2e.prediction_support import PredictorThread, TestClock

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
T = TypeVar("T")
TITLE = "Connection pool exhausted in billing-api after {} waiters on shard {}"


@pytest.fixture(scope="module")
def clock() -> TestClock:
    return TestClock()


class Predictor:
    """The module's prediction worker, which a test may restart (its state is then rebuilt from the store)."""

    def __init__(self, settings: Settings, clock: TestClock) -> None:
        self.settings = settings
        self.thread = PredictorThread(settings, clock).__enter__()

    def restart(self) -> None:
        self.thread.__exit__()
        self.thread = PredictorThread(self.settings, self.thread.clock).__enter__()


@pytest.fixture(scope="module")
def predictor(settings: Settings, workers: Workers, clock: TestClock) -> Iterator[Predictor]:
    with DetectorThread(settings):
        running = Predictor(settings, clock)
        try:
            yield running
        finally:
            running.thread.__exit__()


@pytest.fixture
def pipeline(predictor: Predictor, clock: TestClock) -> TestClock:
    return clock


async def get(api: Client, tenant: Tenant, path: str) -> Any:
    response = await api.get(path, headers=tenant.headers())
    assert response.status_code == 200, response.text
    return response.json()


async def history(api: Client, tenant: Tenant, clock: TestClock, days_ago: list[float]) -> str:
    """Issues of one pattern opened `days_ago` (by the test clock); the pattern's id once all are linked."""
    ids = []
    for n, ago in enumerate(days_ago):
        opened = (clock.now() - timedelta(days=ago)).isoformat()
        response = await api.post("/v1/issues", headers=tenant.headers(), json={
            "title": TITLE.format(10 + n, n), "severity": "high", "source_created_at": opened,
            "metadata": {"service": "billing"}})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    async def linked() -> str | None:
        body = await get(api, tenant, f"/v1/issues/{ids[-1]}")
        if body["pattern_id"] is None:
            return None
        pattern = await get(api, tenant, f"/v1/patterns/{body['pattern_id']}")
        return str(body["pattern_id"]) if pattern["issue_count"] >= len(days_ago) else None

    return await eventually(linked, "the issues to be grouped")


async def predictions(api: Client, tenant: Tenant, pattern_id: str, *, sample_size: int,
                      status: str = "active") -> dict[int, dict[str, Any]]:
    """The pattern's predictions for the three windows, once all reflect `sample_size` occurrences."""
    async def probe() -> dict[int, dict[str, Any]] | None:
        body = await get(api, tenant, f"/v1/predictions?pattern_id={pattern_id}&status={status}")
        found = {p["window_days"]: p for p in body["data"] if p["sample_size"] == sample_size}
        return found if set(found) == {7, 30, 90} else None

    return await eventually(probe, f"predictions over {sample_size} occurrences")


async def rule(api: Client, tenant: Tenant, rule_id: str) -> dict[str, Any]:
    body: dict[str, Any] = await get(api, tenant, f"/v1/alert-rules/{rule_id}")
    return body


async def fired(api: Client, tenant: Tenant, rule_id: str, count: int) -> None:
    async def probe() -> bool | None:
        return True if (await rule(api, tenant, rule_id))["fired_count"] == count else None

    await eventually(probe, f"the rule to have fired {count} time(s)")


async def settled_ticks(api: Client, tenant: Tenant, pattern_id: str, clock: TestClock) -> None:
    """Let the worker's schedule run recomputes: advancing the clock a day makes a tick record an update we can
    wait for (the decayed rates move), and every recompute evaluates the rules."""
    for _ in range(2):
        before = {p["id"]: p["version"] for p in (await get(
            api, tenant, f"/v1/predictions?pattern_id={pattern_id}&status=active&window_days=7"))["data"]}
        clock.advance(timedelta(days=1))

        async def moved(before: dict[str, int] = before) -> bool | None:
            now = {p["id"]: p["version"] for p in (await get(
                api, tenant, f"/v1/predictions?pattern_id={pattern_id}&status=active&window_days=7"))["data"]}
            return True if now != before else None

        await eventually(moved, "a scheduled recompute")


async def test_predictions_alerts_and_notifications(api: Client, tenant: Tenant, pipeline: TestClock) -> None:
    clock = pipeline
    pattern_id = await history(api, tenant, clock, [12, 10, 8, 6, 4, 2])
    first = await predictions(api, tenant, pattern_id, sample_size=6)
    week = first[7]
    assert 0 < week["probability"] < 1 and week["model_version"] and week["impact"] == "high"
    assert week["likely_trigger"] and "6 occurrence(s)" in week["explanation"]
    assert first[90]["probability"] >= first[7]["probability"]
    one = await get(api, tenant, f"/v1/predictions/{week['id']}")
    assert one["id"] == week["id"] and one["status"] == "active"

    summary = await get(api, tenant, "/v1/predictions/summary?window_days=7")
    assert summary["total"] == 1 and summary["alert_threshold"] == 0.7
    assert summary["average_probability"] == pytest.approx(week["probability"], abs=0.02)
    forecast = await get(api, tenant, f"/v1/predictions/forecast?pattern_id={pattern_id}&window_days=7")
    assert len(forecast["projected"]) == 14 and forecast["observed"] and forecast["threshold"] == 0.7
    values = [point["value"] for point in forecast["projected"]]
    assert values == sorted(values) and values[0] > 0

    # A rule just below the current probability fires on the next recompute, once; a snoozed one stays silent.
    threshold = round(week["probability"] - 0.05, 3)
    created = await api.post("/v1/alert-rules", headers=tenant.headers(), json={
        "name": "billing pool", "scope": pattern_id, "threshold": {"probability": threshold, "window_days": 7},
        "channels": ["email"]})
    assert created.status_code == 201, created.text
    live = created.json()
    assert live["enabled"] is True and live["threshold"] == {"probability": threshold, "window_days": 7}
    snoozed = (await api.post("/v1/alert-rules", headers=tenant.headers(), json={
        "name": "everything", "scope": "global", "threshold": {"probability": 0.0, "window_days": 7},
        "snoozed_until": (clock.now() + timedelta(days=30)).isoformat()})).json()
    await fired(api, tenant, live["id"], 1)
    await settled_ticks(api, tenant, pattern_id, clock)
    assert (await rule(api, tenant, live["id"]))["fired_count"] == 1, "fired again without a new crossing"
    assert (await rule(api, tenant, snoozed["id"]))["fired_count"] == 0, "a snoozed rule fired"

    # Raising the threshold above the probability re-arms the rule; lowering it again is a new crossing.
    await api.patch(f"/v1/alert-rules/{live['id']}", headers=tenant.headers(),
                    json={"threshold": {"probability": 0.999, "window_days": 7}})
    await settled_ticks(api, tenant, pattern_id, clock)
    await api.patch(f"/v1/alert-rules/{live['id']}", headers=tenant.headers(),
                    json={"threshold": {"probability": 0.01, "window_days": 7}})
    await fired(api, tenant, live["id"], 2)
    woken = await api.patch(f"/v1/alert-rules/{snoozed['id']}", headers=tenant.headers(),
                            json={"snoozed_until": None})
    assert woken.status_code == 200 and woken.json()["snoozed_until"] is None
    await fired(api, tenant, snoozed["id"], 1)

    # Notifications: six issues created, three alerts fired; read one, read all alerts, dismiss one.
    async def feed_of(count: int) -> list[dict[str, Any]] | None:
        items = (await get(api, tenant, "/v1/me/notifications/feed?limit=50"))["data"]
        return items if len(items) == count else None

    items = await eventually(lambda: feed_of(9), "nine notifications")
    kinds = [item["type"] for item in items]
    assert all(re.fullmatch(r"ntf_[0-9A-HJKMNP-TV-Z]{26}", item["id"]) for item in items)  # the ULID form of every id
    assert kinds.count("issue.created") == 6 and kinds.count("prediction.alert.fired") == 3
    assert all(not item["read"] for item in items)
    page = await get(api, tenant, "/v1/me/notifications/feed")
    assert len(page["data"]) == 9 and page["page"]["total"] == 9
    small = await get(api, tenant, "/v1/me/notifications/feed?limit=4")
    rest = await get(api, tenant, f"/v1/me/notifications/feed?limit=10&cursor={small['page']['next_cursor']}")
    assert [i["id"] for i in small["data"] + rest["data"]] == [i["id"] for i in items]

    issue_note = next(item for item in items if item["type"] == "issue.created")
    read = await api.post(f"/v1/me/notifications/feed/{issue_note['id']}/read", headers=tenant.headers())
    assert read.status_code == 200 and read.json()["unread_count"] == 8
    marked = await api.post("/v1/me/notifications/feed/read-all", headers=tenant.headers(),
                            json={"type": "prediction."})
    assert marked.json() == {"marked": 3, "unread_count": 5}
    unread = await get(api, tenant, "/v1/me/notifications/feed?unread=true")
    assert {i["type"] for i in unread["data"]} == {"issue.created"} and len(unread["data"]) == 5
    gone = await api.delete(f"/v1/me/notifications/feed/{issue_note['id']}", headers=tenant.headers())
    assert gone.status_code == 204
    assert len((await get(api, tenant, "/v1/me/notifications/feed"))["data"]) == 8
    missing = await api.delete(f"/v1/me/notifications/feed/{issue_note['id']}", headers=tenant.headers())
    assert missing.status_code == 404

    deleted = await api.delete(f"/v1/alert-rules/{snoozed['id']}", headers=tenant.headers())
    assert deleted.status_code == 204
    assert (await api.get(f"/v1/alert-rules/{snoozed['id']}", headers=tenant.headers())).status_code == 404
    listed = await get(api, tenant, "/v1/alert-rules")
    assert [r["id"] for r in listed["data"]] == [live["id"]]


async def test_accuracy_is_measured_on_resolved_predictions(api: Client, tenant: Tenant,
                                                            pipeline: TestClock) -> None:
    clock = pipeline
    pattern_id = await history(api, tenant, clock, [9, 6, 3])
    first = await predictions(api, tenant, pattern_id, sample_size=3)
    empty = await get(api, tenant, "/v1/predictions/accuracy")
    assert empty["resolved"] == 0 and empty["brier"] is None

    # The pattern recurs inside every window: the three predictions resolve as recurred, new ones follow.
    clock.advance(timedelta(days=1))
    response = await api.post("/v1/issues", headers=tenant.headers(), json={
        "title": TITLE.format(99, 7), "severity": "high", "source_created_at": clock.now().isoformat(),
        "metadata": {"service": "billing"}})
    assert response.status_code == 201
    second = await predictions(api, tenant, pattern_id, sample_size=4)
    resolved = await get(api, tenant, f"/v1/predictions/{first[7]['id']}")
    assert resolved["status"] == "expired" and resolved["recurred"] is True

    # A quiet week and a day: the 7-day prediction's window ends without a recurrence.
    clock.advance(timedelta(days=8))

    async def expired() -> dict[str, Any] | None:
        body = await get(api, tenant, f"/v1/predictions/{second[7]['id']}")
        return body if body["status"] == "expired" else None

    quiet = await expired() or await eventually(expired, "the 7-day window to end")
    assert quiet["recurred"] is False

    p1, p2 = first[7]["generated_probability"], second[7]["generated_probability"]
    week = await get(api, tenant, "/v1/predictions/accuracy?window_days=7&threshold=0.0")
    assert week["resolved"] == 2 and week["recurred"] == 1
    assert week["brier"] == pytest.approx(((p1 - 1) ** 2 + p2 ** 2) / 2, abs=1e-4)
    assert week["precision"] == 0.5 and week["recall"] == 1.0
    assert week["lead_time_days"] == pytest.approx(1.0, abs=0.01)

    feedback = await api.post(f"/v1/predictions/{second[7]['id']}/feedback", headers=tenant.headers(),
                              json={"outcome": "accurate", "comment": "quiet week indeed"})
    assert feedback.status_code == 200 and feedback.json()["feedback"] == "accurate"
    dismissed = await api.post(f"/v1/predictions/{second[30]['id']}/dismiss", headers=tenant.headers(), json={})
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    counted = await get(api, tenant, "/v1/predictions/accuracy?window_days=7")
    assert counted["feedback_accurate"] == 1

    bad = await api.post(f"/v1/predictions/{second[7]['id']}/feedback", headers=tenant.headers(),
                         json={"outcome": "maybe"})
    assert bad.status_code == 400
    assert (await api.get("/v1/predictions/prd_nope", headers=tenant.headers())).status_code == 404
    viewer = await api.post(f"/v1/predictions/{second[7]['id']}/dismiss",
                            headers=tenant.headers(scopes=frozenset({"predictions:read"})), json={})
    assert viewer.status_code == 403


async def test_a_restarted_worker_neither_repeats_predictions_nor_refires(
        api: Client, tenant: Tenant, predictor: Predictor, clock: TestClock) -> None:
    pattern_id = await history(api, tenant, clock, [5, 4, 3, 2, 1])
    first = await predictions(api, tenant, pattern_id, sample_size=5)
    created = (await api.post("/v1/alert-rules", headers=tenant.headers(), json={
        "name": "any", "scope": "global", "threshold": {"probability": 0.0, "window_days": 30}})).json()
    await fired(api, tenant, created["id"], 1)

    predictor.restart()  # the new worker folds the history, then recomputes on its schedule
    await settled_ticks(api, tenant, pattern_id, clock)
    listed = await get(api, tenant, f"/v1/predictions?pattern_id={pattern_id}")
    assert len(listed["data"]) == 3 and {p["id"] for p in listed["data"]} == {p["id"] for p in first.values()}
    assert (await rule(api, tenant, created["id"]))["fired_count"] == 1
