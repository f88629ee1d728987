"""Recommendations end to end: issues created through the API are grouped by the detector; the recommendation
worker proposes fixes from the knowledge base once the pattern is recurring and confident; a person moves one to
implemented through the API and the pattern is watched for the proof window; with the worker's clock under the
test's control, a clean window verifies the fix (pattern resolved) and a matching issue reopens it (pattern active).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from domain.identity.roles import Role
from domain.recommendations.recommender import Recommender
from tests.e2e.conftest import Tenant, Workers, event_store
from tests.e2e.detector_support import DetectorThread
from tests.e2e.polling import DEADLINE_S, eventually
from tests.e2e.recommender_support import MovableClock, RecommenderThread
from workers.recommender import CATEGORIES, still_pending

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
T = TypeVar("T")
TIMEOUT = "Timeout calling payments-api after {}ms for order {}"


@pytest.fixture(scope="module")
def detector(settings: Settings, workers: Workers) -> Iterator[DetectorThread]:
    with DetectorThread(settings) as running:
        yield running


@pytest.fixture(scope="module")
def recommender(settings: Settings, workers: Workers) -> Iterator[RecommenderThread]:
    with RecommenderThread(settings, MovableClock()) as running:
        yield running


@pytest.fixture
def clock(recommender: RecommenderThread, detector: DetectorThread) -> Iterator[MovableClock]:
    recommender.clock.offset = timedelta(0)
    yield recommender.clock
    recommender.clock.offset = timedelta(0)


async def create(api: Client, tenant: Tenant, title: str) -> dict[str, Any]:
    response = await api.post("/v1/issues", json={"title": title, "severity": "high",
                                                  "metadata": {"service": "checkout", "domain": "payments"}},
                              headers=tenant.headers())
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def recommended(api: Client, tenant: Tenant) -> tuple[str, list[dict[str, Any]]]:
    """A synthetic stream of three matching issues → a pattern → its recommendations."""
    issues = [await create(api, tenant, TIMEOUT.format(3000 + n, 100 + n)) for n in range(3)]

    async def pattern() -> str | None:
        body = (await api.get(f"/v1/issues/{issues[-1]['id']}", headers=tenant.headers())).json()
        return body["pattern_id"]  # type: ignore[no-any-return]

    pattern_id = await eventually(pattern, "the detector's grouping")

    async def listed() -> list[dict[str, Any]] | None:
        page = (await api.get(f"/v1/recommendations?pattern_id={pattern_id}", headers=tenant.headers())).json()
        return page["data"] if len(page["data"]) >= 2 else None  # type: ignore[no-any-return]

    return pattern_id, await eventually(listed, "the recommendation worker's proposal")


async def pattern_status(api: Client, tenant: Tenant, pattern_id: str) -> str:
    body = (await api.get(f"/v1/patterns/{pattern_id}", headers=tenant.headers())).json()
    return body["status"]  # type: ignore[no-any-return]


async def implemented(api: Client, tenant: Tenant, recommendation: dict[str, Any], pattern_id: str
                      ) -> dict[str, Any]:
    path = f"/v1/recommendations/{recommendation['id']}"
    started = await api.patch(path, json={"status": "in_progress"}, headers=tenant.headers())
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "in_progress"
    assert await pattern_status(api, tenant, pattern_id) == "mitigating"
    step = recommendation["steps"][0]["id"]
    checked = await api.patch(f"{path}/steps/{step}", json={"completed": True}, headers=tenant.headers())
    assert checked.status_code == 200, checked.text
    assert checked.json()["steps"][0]["completed"] is True and checked.json()["steps"][0]["completed_at"]
    done = await api.patch(path, json={"status": "implemented"}, headers=tenant.headers())
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    assert body["status"] == "implemented"
    assert await pattern_status(api, tenant, pattern_id) == "watching"
    return body


async def test_a_pattern_gets_ranked_recommendations_from_the_knowledge_base(
        api: Client, tenant: Tenant, clock: MovableClock) -> None:
    pattern_id, recommendations = await recommended(api, tenant)

    assert [r["rank"] for r in recommendations] == [1, 2]
    best, second = recommendations
    assert best["playbook"] == "timeout-budget" and best["type"] == "code_fix" and best["impact"] == "high"
    assert second["playbook"] == "timeout-alerting" and second["impact"] == "quick_win"
    assert best["expected_loops_prevented"] > second["expected_loops_prevented"] > 0
    assert best["status"] == "pending" and best["verification"]["state"] == "none"
    assert best["pattern_id"] == pattern_id and len(best["steps"]) == 4
    assert not any(step["completed"] for step in best["steps"])

    one = await api.get(f"/v1/recommendations/{best['id']}", headers=tenant.headers())
    assert one.status_code == 200 and one.headers["etag"] == f'"{best["version"]}"'
    by_impact = (await api.get("/v1/recommendations?impact=quick_win", headers=tenant.headers())).json()
    assert [r["id"] for r in by_impact["data"]] == [second["id"]]
    by_loops = (await api.get("/v1/recommendations?sort=-expected_loops_prevented",
                              headers=tenant.headers())).json()
    assert [r["id"] for r in by_loops["data"]] == [best["id"], second["id"]]
    bad = await api.get("/v1/recommendations?status=done", headers=tenant.headers())
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "status"

    dismissed = await api.post(f"/v1/recommendations/{second['id']}/dismiss", json={"reason": "we page already"},
                               headers=tenant.headers())
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["status"] == "dismissed" and dismissed.json()["dismissed_reason"] == "we page already"
    again = await api.patch(f"/v1/recommendations/{second['id']}", json={"status": "in_progress"},
                            headers=tenant.headers())
    assert again.status_code == 422 and again.json()["error"]["code"] == "invalid_transition"
    stale = await api.patch(f"/v1/recommendations/{best['id']}", json={"status": "in_progress"},
                            headers={**tenant.headers(), "If-Match": '"0"'})
    assert stale.status_code == 412
    same = await api.patch(f"/v1/recommendations/{best['id']}", json={"status": "pending"},
                           headers={**tenant.headers(), "If-Match": f'"{best["version"]}"'})
    assert same.status_code == 200 and same.json()["version"] == best["version"]
    no_step = await api.patch(f"/v1/recommendations/{best['id']}/steps/s99", json={"completed": True},
                              headers=tenant.headers())
    assert no_step.status_code == 400
    missing = await api.get("/v1/recommendations/rec_01HZZZZZZZZZZZZZZZZZZZZZZZ", headers=tenant.headers())
    assert missing.status_code == 404
    viewer = await api.patch(f"/v1/recommendations/{best['id']}", json={"status": "in_progress"},
                             headers=tenant.member_headers(Role.VIEWER))
    assert viewer.status_code == 403

    started = await api.patch(f"/v1/recommendations/{best['id']}", json={"status": "in_progress"},
                              headers=tenant.headers())
    assert started.status_code == 200 and await pattern_status(api, tenant, pattern_id) == "mitigating"
    dropped = await api.post(f"/v1/recommendations/{best['id']}/dismiss", json={}, headers=tenant.headers())
    assert dropped.status_code == 200 and dropped.json()["dismissed_reason"] is None
    assert await pattern_status(api, tenant, pattern_id) == "active"  # nothing in progress any more


async def test_each_proposed_fix_reaches_the_members_notification_feed(
        api: Client, tenant: Tenant, clock: MovableClock) -> None:
    _, recommendations = await recommended(api, tenant)
    proposed = {r["id"]: r["title"] for r in recommendations}

    deadline = time.monotonic() + DEADLINE_S
    while True:
        feed = (await api.get("/v1/me/notifications/feed?limit=100", headers=tenant.headers())).json()["data"]
        notices = [n for n in feed if n["type"] == "recommendation.created"]
        if {n["entity_id"] for n in notices} == set(proposed):
            break
        assert time.monotonic() < deadline, f"recommendation notices never arrived: {notices}"
        await asyncio.sleep(0.05)
    assert all(n["entity_type"] == "recommendation" and proposed[n["entity_id"]] in n["title"] for n in notices)
    marked = await api.post("/v1/me/notifications/feed/read-all", json={"type": "recommendation."},
                            headers=tenant.headers())
    assert marked.status_code == 200 and marked.json()["marked"] == len(proposed)


async def test_a_clean_proof_window_verifies_the_fix_and_resolves_the_pattern(
        api: Client, tenant: Tenant, clock: MovableClock, settings: Settings) -> None:
    pattern_id, recommendations = await recommended(api, tenant)
    body = await implemented(api, tenant, recommendations[0], pattern_id)
    verification = body["verification"]
    assert verification["state"] == "watching" and verification["proof_window_days"] == 30
    assert "proof window of 30 days" in verification["explanation"]
    path = f"/v1/recommendations/{body['id']}"

    clock.offset = timedelta(days=29)
    await asyncio.sleep(1.5)  # two check cycles of the worker at day 29: still watching
    assert (await api.get(path, headers=tenant.headers())).json()["verification"]["state"] == "watching"

    clock.offset = timedelta(days=31)

    async def verified() -> dict[str, Any] | None:
        found: dict[str, Any] = (await api.get(path, headers=tenant.headers())).json()
        return found if found["verification"]["state"] == "verified" else None

    done = await eventually(verified, "verification")
    assert done["verification"]["verified_at"] and done["status"] == "implemented"
    assert await pattern_status(api, tenant, pattern_id) == "resolved"

    late = await create(api, tenant, TIMEOUT.format(9000, 999))

    async def reopened() -> dict[str, Any] | None:
        found: dict[str, Any] = (await api.get(path, headers=tenant.headers())).json()
        return found if found["verification"]["state"] == "reopened" else None

    after = await eventually(reopened, "reopening after verification")
    assert after["verification"]["reopened_by_issue_id"] == late["id"] and after["status"] == "in_progress"
    assert await pattern_status(api, tenant, pattern_id) == "active"

    replayed = await asyncio.to_thread(replay_pending, settings, tenant.workspace_id)
    assert replayed == [], "a restarted recommender would append again what it already decided"


def replay_pending(settings: Settings, workspace_id: str) -> list[object]:
    """What a recommender rebuilt from the whole history would still decide for this workspace."""
    recommender = Recommender()
    decisions: list[object] = []
    position = 0
    with event_store(settings) as store:
        while page := store.read(position, 2_000):
            for _, event in page:
                if event.category in CATEGORIES:
                    decisions += recommender.observe(event)
            position = page[-1][0]
    return [d for d in still_pending(recommender, decisions)  # type: ignore[arg-type]
            if getattr(d, "workspace_id", None) == workspace_id]


async def test_a_matching_issue_in_the_window_reopens_the_fix_and_the_pattern(
        api: Client, tenant: Tenant, clock: MovableClock) -> None:
    pattern_id, recommendations = await recommended(api, tenant)
    body = await implemented(api, tenant, recommendations[0], pattern_id)
    path = f"/v1/recommendations/{body['id']}"

    clock.offset = timedelta(days=3)
    offending = await create(api, tenant, TIMEOUT.format(4242, 4242))

    async def reopened() -> dict[str, Any] | None:
        found: dict[str, Any] = (await api.get(path, headers=tenant.headers())).json()
        return found if found["verification"]["state"] == "reopened" else None

    after = await eventually(reopened, "reopening")
    assert after["status"] == "in_progress" and after["verification"]["reopened_at"]
    assert after["verification"]["reopened_by_issue_id"] == offending["id"]
    assert await pattern_status(api, tenant, pattern_id) == "active"

    clock.offset = timedelta(days=40)
    await asyncio.sleep(1.5)  # the window would have passed: a reopened fix is not verified
    assert (await api.get(path, headers=tenant.headers())).json()["verification"]["state"] == "reopened"
