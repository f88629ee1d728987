"""`GET /v1/recommendations` filters and sorts as docs/api.md names them: `status`, `type`, `impact` (each
comma-separated, OR), `pattern_id`; sorts `rank` (default; ties by `-expected_loops_prevented`), `created_at`,
`expected_loops_prevented`, `updated_at`, each in both directions; cursor paging under filters; a bad value is 400
`validation_error` in the error envelope. The recommendations come the real way: issues through the API, grouped by
the detector, proposed by the recommendation worker from the knowledge base."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.detector_support import DetectorThread
from tests.e2e.errors import assert_validation_error
from tests.e2e.polling import eventually
from tests.e2e.recommender_support import MovableClock, RecommenderThread

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
EVERYTHING = "limit=100"
TIMEOUTS = ("Timeout calling payments-api after {}ms for order {}", [5, 2.5, 0])
"""timeout-budget (code_fix, high, rank 1) and timeout-alerting (monitoring, quick_win, rank 2)."""
DISK = ("Disk full on reporting-db volume {} during nightly export {}", [20, 10, 0])
"""disk-full (config_change, high): its issues are sparse, so it prevents the fewest loops."""
CERTIFICATES = ("TLS certificate expired for edge-gateway listener {} on port {}", [0, 0, 0])
"""certificate-expiry (process, high): its issues come at once, so it prevents the most loops."""


@pytest.fixture(scope="module")
def workers_running(settings: Settings, workers: Workers) -> Iterator[None]:
    with DetectorThread(settings), RecommenderThread(settings, MovableClock()):
        yield


class Proposed:
    """The workspace's four recommendations, by playbook."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.by_playbook = {row["playbook"]: row for row in rows}

    def id(self, playbook: str) -> str:
        return str(self.by_playbook[playbook]["id"])

    def ids(self, *playbooks: str) -> set[str]:
        return {self.id(playbook) for playbook in playbooks}


async def listed(api: Client, tenant: Tenant, query: str) -> dict[str, Any]:
    response = await api.get(f"/v1/recommendations?{query}", headers=tenant.headers())
    assert response.status_code == 200, (query, response.text)
    body: dict[str, Any] = response.json()
    return body


async def ids(api: Client, tenant: Tenant, query: str) -> list[str]:
    return [row["id"] for row in (await listed(api, tenant, query))["data"]]


async def pattern_of(api: Client, tenant: Tenant, template: str, days_ago: list[float]) -> str:
    now = datetime.now(UTC)
    created = []
    for n, ago in enumerate(days_ago):
        response = await api.post("/v1/issues", headers=tenant.headers(), json={
            "title": template.format(3000 + n, 100 + n), "severity": "high",
            "source_created_at": (now - timedelta(days=ago)).isoformat()})
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])

    async def linked() -> str | None:
        body = (await api.get(f"/v1/issues/{created[-1]}", headers=tenant.headers())).json()
        return body["pattern_id"]  # type: ignore[no-any-return]

    return await eventually(linked, "the detector's grouping")


async def proposed(api: Client, tenant: Tenant) -> Proposed:
    """Three patterns and their four recommendations; one moved to in_progress, one dismissed."""
    patterns = [await pattern_of(api, tenant, template, ages) for template, ages in (TIMEOUTS, DISK, CERTIFICATES)]
    assert len(set(patterns)) == 3

    async def four() -> list[dict[str, Any]] | None:
        rows = (await listed(api, tenant, EVERYTHING))["data"]
        return rows if len(rows) == 4 else None

    found = Proposed(await eventually(four, "the recommendation worker's proposals"))
    assert set(found.by_playbook) == {"timeout-budget", "timeout-alerting", "disk-full", "certificate-expiry"}
    started = await api.patch(f"/v1/recommendations/{found.id('disk-full')}", json={"status": "in_progress"},
                              headers=tenant.headers())
    assert started.status_code == 200, started.text
    dismissed = await api.post(f"/v1/recommendations/{found.id('timeout-alerting')}/dismiss", json={},
                               headers=tenant.headers())
    assert dismissed.status_code == 200, dismissed.text
    return Proposed((await listed(api, tenant, EVERYTHING))["data"])


def ordered(rows: list[dict[str, Any]], field: str, *, descending: bool) -> list[str]:
    """By the field, ties by id, both in the asked direction."""
    return [row["id"] for row in sorted(rows, key=lambda row: (row[field], row["id"]), reverse=descending)]


def by_rank(rows: list[dict[str, Any]], *, descending: bool) -> list[str]:
    """By rank, ties by the most loops prevented first, then by id in the rank's direction."""
    by_id = sorted(rows, key=lambda row: row["id"], reverse=descending)
    sign = -1 if descending else 1
    return [row["id"] for row in sorted(by_id, key=lambda row: (sign * row["rank"], -row["expected_loops_prevented"]))]


async def test_each_filter_narrows_the_list_as_documented(api: Client, tenant: Tenant, workers_running: None
                                                          ) -> None:
    found = await proposed(api, tenant)
    timeouts = found.by_playbook["timeout-budget"]["pattern_id"]

    assert set(await ids(api, tenant, "status=pending")) == found.ids("timeout-budget", "certificate-expiry")
    assert await ids(api, tenant, "status=in_progress") == [found.id("disk-full")]
    assert await ids(api, tenant, "status=dismissed") == [found.id("timeout-alerting")]
    assert set(await ids(api, tenant, "status=pending,dismissed")) == found.ids(
        "timeout-budget", "certificate-expiry", "timeout-alerting")
    assert await ids(api, tenant, "status=implemented") == []

    assert await ids(api, tenant, "type=code_fix") == [found.id("timeout-budget")]
    assert await ids(api, tenant, "type=monitoring") == [found.id("timeout-alerting")]
    assert set(await ids(api, tenant, "type=config_change,process")) == found.ids("disk-full", "certificate-expiry")

    assert await ids(api, tenant, "impact=quick_win") == [found.id("timeout-alerting")]
    assert set(await ids(api, tenant, "impact=high")) == found.ids("timeout-budget", "disk-full", "certificate-expiry")
    assert await ids(api, tenant, "impact=medium") == []

    assert set(await ids(api, tenant, f"pattern_id={timeouts}")) == found.ids("timeout-budget", "timeout-alerting")
    assert set(await ids(api, tenant, f"pattern_id={timeouts.lower()}")) == found.ids("timeout-budget",
                                                                                      "timeout-alerting")
    assert await ids(api, tenant, f"pattern_id={timeouts}&status=pending") == [found.id("timeout-budget")]
    assert await ids(api, tenant, "type=code_fix,config_change&impact=high&status=in_progress") == [
        found.id("disk-full")]


async def test_each_sort_orders_the_list_as_documented(api: Client, tenant: Tenant, workers_running: None) -> None:
    found = await proposed(api, tenant)
    rows = found.rows

    assert [row["id"] for row in rows] == by_rank(rows, descending=False)
    assert await ids(api, tenant, f"{EVERYTHING}&sort=rank") == [
        found.id("certificate-expiry"), found.id("timeout-budget"), found.id("disk-full"),
        found.id("timeout-alerting")]
    assert await ids(api, tenant, f"{EVERYTHING}&sort=-rank") == by_rank(rows, descending=True)
    assert (await ids(api, tenant, f"{EVERYTHING}&sort=-rank"))[0] == found.id("timeout-alerting")
    for field in ("created_at", "expected_loops_prevented", "updated_at"):
        assert len({row[field] for row in rows}) > 1, field
        ascending = await ids(api, tenant, f"{EVERYTHING}&sort={field}")
        descending = await ids(api, tenant, f"{EVERYTHING}&sort=-{field}")
        assert (ascending, descending) == (ordered(rows, field, descending=False),
                                           ordered(rows, field, descending=True)), field
    assert await ids(api, tenant, f"{EVERYTHING}&sort=-expected_loops_prevented") == [
        found.id("certificate-expiry"), found.id("timeout-budget"), found.id("timeout-alerting"),
        found.id("disk-full")]
    assert set((await ids(api, tenant, f"{EVERYTHING}&sort=-updated_at"))[:2]) == found.ids(
        "disk-full", "timeout-alerting")


async def test_cursor_pages_keep_the_filter_and_the_sort(api: Client, tenant: Tenant, workers_running: None
                                                         ) -> None:
    found = await proposed(api, tenant)
    query = "impact=high&sort=-expected_loops_prevented"

    first = await listed(api, tenant, f"{query}&limit=2")
    assert first["page"]["has_more"] is True and first["page"]["total"] == 3
    second = await listed(api, tenant, f"{query}&limit=2&cursor={first['page']['next_cursor']}")
    assert second["page"] == {"next_cursor": None, "has_more": False, "total": 3}
    assert [row["id"] for row in first["data"] + second["data"]] == [
        found.id("certificate-expiry"), found.id("timeout-budget"), found.id("disk-full")]

    other_sort = await api.get(f"/v1/recommendations?impact=high&sort=rank&cursor={first['page']['next_cursor']}",
                               headers=tenant.headers())
    assert other_sort.status_code == 400
    assert other_sort.json()["error"]["message"] == "malformed cursor token"


@pytest.mark.parametrize(("query", "field"), [
    ("status=done", "status"), ("status=pending,open", "status"), ("type=bug", "type"), ("impact=low", "impact"),
    ("impact=critical", "impact"), ("pattern_id=iss_01HZZZZZZZZZZZZZZZZZZZZZZZ", "pattern_id"),
    ("pattern_id=nope", "pattern_id"), ("sort=-title", "sort"), ("sort=impact", "sort"),
    ("cursor=not-a-cursor", "cursor"), ("limit=0", "limit"), ("limit=101", "limit"),
])
async def test_a_bad_filter_value_is_a_validation_error_in_the_envelope(api: Client, tenant: Tenant, query: str,
                                                                        field: str) -> None:
    response = await api.get(f"/v1/recommendations?{query}", headers=tenant.headers())

    assert_validation_error(response, field)
