"""The whole failure-intelligence loop, end to end, with the clock under the test's control.

A synthetic stream of issues (one recurring failure among unrelated ones) goes in through `POST /v1/issues`; the
pattern detector groups the recurring ones into one pattern, the prediction worker predicts its recurrence and an
alert rule fires, the recommendation worker proposes fixes, a person implements the best one through the API, and
the proof window verifies it (pattern resolved) — until the failure returns and reopens the loop. Every step is
observed through the public API, the notification feed and the events on NATS, as a client and an internal
subscriber would see them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import nats
import pytest
from litestar.testing import AsyncTestClient
from nats.aio.msg import Msg

from adapters.settings import Settings
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.detector_support import DetectorThread
from tests.e2e.polling import eventually
from tests.e2e.prediction_support import PredictorThread, TestClock
from tests.e2e.recommender_support import MovableClock, RecommenderThread

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
T = TypeVar("T")
RECURRING = "Timeout calling payments-api after {}ms for order {}"
UNRELATED = ("Disk full on /var/lib/postgresql on db-3", "TLS certificate expired for status.example.com",
             "Out of memory: killed process 4121 (report-builder)")


class LoopClock:
    """One time for every worker: the prediction worker reads `predictions`, the recommender `verification`."""

    def __init__(self) -> None:
        self.predictions = TestClock()
        self.verification = MovableClock()

    def advance(self, delta: timedelta) -> None:
        self.predictions.advance(delta)
        self.verification.offset += delta


@pytest.fixture(scope="module")
def loop_clock(settings: Settings, workers: Workers) -> Iterator[LoopClock]:
    clock = LoopClock()
    with DetectorThread(settings), PredictorThread(settings, clock.predictions), \
            RecommenderThread(settings, clock.verification):
        yield clock


@pytest.fixture
async def bus(settings: Settings, tenant: Tenant) -> AsyncIterator[list[str]]:
    """The event types published for the tenant's workspace, in the order a plain NATS subscriber receives them."""
    seen: list[str] = []

    async def received(msg: Msg) -> None:
        seen.append(msg.subject.rsplit(".", 1)[-1])

    nc = await nats.connect(settings.nats_url)
    await nc.subscribe(f"{settings.subject_prefix}.{tenant.workspace_id}.>", cb=received)
    await nc.flush()
    try:
        yield seen
    finally:
        await nc.close()


async def get(api: Client, tenant: Tenant, path: str) -> Any:
    response = await api.get(path, headers=tenant.headers())
    assert response.status_code == 200, response.text
    return response.json()


async def open_issue(api: Client, tenant: Tenant, title: str, opened: str | None = None) -> str:
    body: dict[str, Any] = {"title": title, "severity": "high",
                            "metadata": {"service": "checkout", "domain": "payments"}}
    if opened is not None:
        body["source_created_at"] = opened
    response = await api.post("/v1/issues", json=body, headers=tenant.headers())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_recurring_failure_goes_round_the_loop_and_back(
        api: Client, tenant: Tenant, loop_clock: LoopClock, bus: list[str]) -> None:
    clock = loop_clock
    rule = await api.post("/v1/alert-rules", headers=tenant.headers(), json={
        "name": "anything likely this week", "scope": "global", "threshold": {"probability": 0.05, "window_days": 7}})
    assert rule.status_code == 201, rule.text

    # The stream: the same failure six times over twelve days, and three unrelated ones.
    now = clock.predictions.now()
    recurring = [await open_issue(api, tenant, RECURRING.format(3000 + n, 100 + n),
                                  (now - timedelta(days=ago)).isoformat())
                 for n, ago in enumerate([12, 10, 8, 6, 4, 2])]
    unrelated = [await open_issue(api, tenant, title) for title in UNRELATED]

    # Patterns: the six in one pattern, with how each matched; none of the others in it.
    async def grouped() -> str | None:
        issue = await get(api, tenant, f"/v1/issues/{recurring[-1]}")
        if issue["pattern_id"] is None:
            return None
        pattern = await get(api, tenant, f"/v1/patterns/{issue['pattern_id']}")
        return str(pattern["id"]) if pattern["issue_count"] == len(recurring) else None

    pattern_id = await eventually(grouped, "the recurring issues to be grouped")
    members = (await get(api, tenant, f"/v1/patterns/{pattern_id}/members?limit=50"))["data"]
    assert {m["issue_id"] for m in members} == set(recurring)
    assert all(0 < m["similarity"] <= 1 and m["match_method"] for m in members)
    for issue_id in unrelated:
        other = await eventually(lambda i=issue_id: _assigned(api, tenant, i), "every issue to be analysed")
        assert other["pattern_id"] != pattern_id
    analysed = await get(api, tenant, f"/v1/issues/{recurring[0]}")
    assert analysed["risk_score"] > 0 and analysed["analysis"]["root_cause"]

    # Predictions for the three windows, and the alert rule fires into the feed.
    async def predicted() -> dict[int, Any] | None:
        body = await get(api, tenant, f"/v1/predictions?pattern_id={pattern_id}&status=active")
        found = {p["window_days"]: p for p in body["data"]}
        return found if set(found) == {7, 30, 90} else None

    windows = await eventually(predicted, "predictions")
    assert 0 < windows[7]["probability"] <= windows[90]["probability"] < 1
    assert "occurrence" in windows[7]["explanation"] and windows[7]["model_version"]

    async def feed_has(kind: str) -> list[Any] | None:
        items = (await get(api, tenant, "/v1/me/notifications/feed?limit=100"))["data"]
        found = [item for item in items if item["type"] == kind]
        return found or None

    alerts = await eventually(lambda: feed_has("prediction.alert.fired"), "the alert in the feed")
    assert alerts[0]["entity_type"] == "prediction"

    # Recommendations, ranked, announced in the feed; the best one is implemented.
    async def recommended() -> list[Any] | None:
        page = await get(api, tenant, f"/v1/recommendations?pattern_id={pattern_id}")
        return page["data"] or None

    recommendations = await eventually(recommended, "recommendations")
    best = recommendations[0]
    assert best["rank"] == 1 and best["expected_loops_prevented"] > 0 and best["steps"]
    await eventually(lambda: feed_has("recommendation.created"), "the recommendation in the feed")
    path = f"/v1/recommendations/{best['id']}"
    for status in ("in_progress", "implemented"):
        moved = await api.patch(path, json={"status": status}, headers=tenant.headers())
        assert moved.status_code == 200, moved.text
    assert (await get(api, tenant, f"/v1/patterns/{pattern_id}"))["status"] == "watching"

    # A quiet proof window verifies the fix and resolves the pattern.
    window = int((await get(api, tenant, path))["verification"]["proof_window_days"])
    clock.advance(timedelta(days=window + 1))

    async def verification(state: str) -> dict[str, Any] | None:
        found: dict[str, Any] = await get(api, tenant, path)
        return found if found["verification"]["state"] == state else None

    await eventually(lambda: verification("verified"), "verification")
    await eventually(lambda: pattern_in(api, tenant, pattern_id, "resolved"), "the pattern to be resolved")

    # The failure returns: the loop reopens.
    back = await open_issue(api, tenant, RECURRING.format(9000, 999))
    reopened = await eventually(lambda: verification("reopened"), "the loop to reopen")
    assert reopened["verification"]["reopened_by_issue_id"] == back
    await eventually(lambda: pattern_in(api, tenant, pattern_id, "active"), "the pattern to be active again")

    # An internal subscriber saw the whole loop on NATS, each chain of causes in order.
    chains = [["IssueOpened", "PatternDetected", "IssueLinkedToPattern"],
              ["PatternDetected", "PredictionGenerated", "AlertFired"],
              ["PatternDetected", "RecommendationCreated", "RecommendationVerificationStarted",
               "RecommendationVerified", "RecommendationReopened"]]

    async def heard() -> bool | None:
        return True if {kind for chain in chains for kind in chain} <= set(bus) else None

    await eventually(heard, f"the loop's events on NATS (heard {sorted(set(bus))})")
    for chain in chains:
        firsts = [bus.index(kind) for kind in chain]
        assert firsts == sorted(firsts), f"{chain} out of order in {bus}"


async def pattern_in(api: Client, tenant: Tenant, pattern_id: str, status: str) -> bool | None:
    """The recommender moves the pattern in a command of its own, after the recommendation's: poll for it."""
    return True if (await get(api, tenant, f"/v1/patterns/{pattern_id}"))["status"] == status else None


async def _assigned(api: Client, tenant: Tenant, issue_id: str) -> dict[str, Any] | None:
    """The issue once the detector has analysed it (its stage moved past `new`)."""
    issue: dict[str, Any] = await get(api, tenant, f"/v1/issues/{issue_id}")
    return issue if issue["stage"] not in ("new", "analyzing") else None
