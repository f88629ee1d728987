"""`GET /v1/predictions` filters and sorts as docs/api.md names them: `pattern_id`, `status`, `impact`,
`min_probability`, `window_days`; sorts `predicted_at`, `probability`, `expires_at` (default `-predicted_at`); cursor
paging under filters; a bad value is 400 `validation_error` in the error envelope. The predictions come the real way:
issues through the API, grouped by the detector, forecast by the prediction worker on a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.detector_support import DetectorThread
from tests.e2e.errors import assert_validation_error
from tests.e2e.polling import eventually
from tests.e2e.prediction_support import PredictorThread, TestClock

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
POOL = "Connection pool exhausted in billing-api after {} waiters on shard {}"
DISK = "Disk quota exceeded on reporting-db volume {} during nightly export {}"
EVERYTHING = "limit=100"


@pytest.fixture(scope="module")
def clock(settings: Settings, workers: Workers) -> Iterator[TestClock]:
    moved = TestClock()
    with DetectorThread(settings), PredictorThread(settings, moved):
        yield moved


async def listed(api: Client, tenant: Tenant, query: str) -> dict[str, Any]:
    response = await api.get(f"/v1/predictions?{query}", headers=tenant.headers())
    assert response.status_code == 200, (query, response.text)
    body: dict[str, Any] = response.json()
    return body


async def ids(api: Client, tenant: Tenant, query: str) -> list[str]:
    return [row["id"] for row in (await listed(api, tenant, query))["data"]]


async def open_issue(api: Client, tenant: Tenant, title: str, severity: str, opened: str) -> None:
    response = await api.post("/v1/issues", headers=tenant.headers(), json={
        "title": title, "severity": severity, "source_created_at": opened})
    assert response.status_code == 201, response.text


async def predicted(api: Client, tenant: Tenant, clock: TestClock, template: str, severity: str,
                    days_ago: list[float]) -> dict[int, dict[str, Any]]:
    """A pattern of `severity` issues opened `days_ago` by the test clock; its 7-, 30- and 90-day predictions once
    each reflects every occurrence."""
    for n, ago in enumerate(days_ago):
        await open_issue(api, tenant, template.format(10 + n, n), severity,
                         (clock.now() - timedelta(days=ago)).isoformat())

    async def probe() -> dict[int, dict[str, Any]] | None:
        rows = (await listed(api, tenant, f"{EVERYTHING}&status=active"))["data"]
        mine = {row["window_days"]: row for row in rows
                if row["sample_size"] == len(days_ago) and row["likely_trigger"] and row["impact"] == severity}
        return mine if set(mine) == {7, 30, 90} else None

    return await eventually(probe, f"the {severity} pattern's three predictions")


async def two_patterns(api: Client, tenant: Tenant, clock: TestClock
                       ) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """A critical, frequent pattern predicted at T0, and a low, sparse one predicted an hour later (so
    `predicted_at` tells them apart)."""
    critical = await predicted(api, tenant, clock, POOL, "critical", [6, 5, 4, 3, 2, 1])
    clock.advance(timedelta(hours=1))
    low = await predicted(api, tenant, clock, DISK, "low", [20, 11, 2])
    assert {p["pattern_id"] for p in critical.values()}.isdisjoint({p["pattern_id"] for p in low.values()})
    return critical, low


def ordered(rows: list[dict[str, Any]], field: str, *, descending: bool) -> list[str]:
    """The documented order: by the field, ties by id, both in the asked direction."""
    return [row["id"] for row in sorted(rows, key=lambda row: (row[field], row["id"]), reverse=descending)]


async def test_each_filter_narrows_the_list_as_documented(api: Client, tenant: Tenant, clock: TestClock) -> None:
    critical, low = await two_patterns(api, tenant, clock)
    everything = (await listed(api, tenant, EVERYTHING))["data"]
    assert len(everything) == 6
    pattern = critical[7]["pattern_id"]

    assert set(await ids(api, tenant, f"pattern_id={pattern}")) == {p["id"] for p in critical.values()}
    assert set(await ids(api, tenant, f"pattern_id={pattern.lower()}")) == {p["id"] for p in critical.values()}
    assert set(await ids(api, tenant, "window_days=30")) == {critical[30]["id"], low[30]["id"]}
    assert set(await ids(api, tenant, "impact=low")) == {p["id"] for p in low.values()}
    assert len(await ids(api, tenant, "impact=critical,low")) == 6
    assert await ids(api, tenant, "impact=high,medium") == []
    assert await ids(api, tenant, "status=dismissed,expired") == []
    assert await ids(api, tenant, f"pattern_id={pattern}&window_days=90") == [critical[90]["id"]]

    probabilities = sorted({row["probability"] for row in everything})
    assert len(probabilities) >= 2, "the two patterns' forecasts should differ"
    cut = (probabilities[len(probabilities) // 2 - 1] + probabilities[len(probabilities) // 2]) / 2
    above = {row["id"] for row in everything if row["probability"] >= cut}
    assert 0 < len(above) < 6
    assert set(await ids(api, tenant, f"min_probability={cut}")) == above
    assert set(await ids(api, tenant, f"min_probability={probabilities[-1]}")) == {
        row["id"] for row in everything if row["probability"] == probabilities[-1]}
    assert len(await ids(api, tenant, "min_probability=0")) == 6


async def test_each_sort_orders_the_list_as_documented(api: Client, tenant: Tenant, clock: TestClock) -> None:
    critical, low = await two_patterns(api, tenant, clock)
    everything = (await listed(api, tenant, EVERYTHING))["data"]
    default = [row["id"] for row in everything]

    assert default == ordered(everything, "predicted_at", descending=True)
    assert default[:3] == [row["id"] for row in everything if row["pattern_id"] == low[7]["pattern_id"]]
    for field in ("predicted_at", "probability", "expires_at"):
        assert len({row[field] for row in everything}) > 1, field
        ascending = await ids(api, tenant, f"{EVERYTHING}&sort={field}")
        descending = await ids(api, tenant, f"{EVERYTHING}&sort=-{field}")
        assert (ascending, descending) == (ordered(everything, field, descending=False),
                                           ordered(everything, field, descending=True)), field
    assert await ids(api, tenant, f"{EVERYTHING}&sort=expires_at") == [
        critical[7]["id"], low[7]["id"], critical[30]["id"], low[30]["id"], critical[90]["id"], low[90]["id"]]
    weekly = [row for row in everything if row["window_days"] == 7]
    assert await ids(api, tenant, f"{EVERYTHING}&sort=-probability&window_days=7") == ordered(
        weekly, "probability", descending=True)


async def test_status_filter_tells_active_dismissed_and_expired_apart(api: Client, tenant: Tenant,
                                                                     clock: TestClock) -> None:
    critical, low = await two_patterns(api, tenant, clock)
    dismissed = await api.post(f"/v1/predictions/{low[30]['id']}/dismiss", headers=tenant.headers(), json={})
    assert dismissed.status_code == 200, dismissed.text

    clock.advance(timedelta(hours=1))
    await open_issue(api, tenant, POOL.format(99, 9), "critical", clock.now().isoformat())
    renewed = await predicted_again(api, tenant, critical[7]["pattern_id"])

    old = {p["id"] for p in critical.values()}
    assert set(await ids(api, tenant, "status=expired")) == old
    assert await ids(api, tenant, "status=dismissed") == [low[30]["id"]]
    assert set(await ids(api, tenant, "status=active")) == renewed | {low[7]["id"], low[90]["id"]}
    assert set(await ids(api, tenant, "status=expired,dismissed")) == old | {low[30]["id"]}
    assert len(await ids(api, tenant, EVERYTHING)) == 9
    assert await ids(api, tenant, "status=expired&window_days=7") == [critical[7]["id"]]
    assert set(await ids(api, tenant, f"status=active&pattern_id={low[7]['pattern_id']}")) == {
        low[7]["id"], low[90]["id"]}


async def predicted_again(api: Client, tenant: Tenant, pattern_id: str) -> set[str]:
    """The pattern's next generation of predictions (made once an issue recurred inside their windows)."""
    async def probe() -> set[str] | None:
        rows = (await listed(api, tenant, f"pattern_id={pattern_id}&status=active"))["data"]
        fresh = {row["id"] for row in rows if row["sample_size"] == 7}
        return fresh if len(fresh) == 3 else None

    return await eventually(probe, "the recurrence to renew the predictions")


async def test_cursor_pages_keep_the_filter_and_the_sort(api: Client, tenant: Tenant, clock: TestClock) -> None:
    critical, low = await two_patterns(api, tenant, clock)
    query = "impact=critical&sort=-probability"
    whole = await ids(api, tenant, f"{query}&{EVERYTHING}")
    assert set(whole) == {p["id"] for p in critical.values()}

    first = await listed(api, tenant, f"{query}&limit=2")
    assert first["page"]["has_more"] is True and first["page"]["total"] == 3
    second = await listed(api, tenant, f"{query}&limit=2&cursor={first['page']['next_cursor']}")
    assert second["page"] == {"next_cursor": None, "has_more": False, "total": 3}
    assert [row["id"] for row in first["data"] + second["data"]] == whole

    narrow = f"pattern_id={low[7]['pattern_id']}&sort=expires_at"
    page = await listed(api, tenant, f"{narrow}&limit=2")
    rest = await listed(api, tenant, f"{narrow}&limit=2&cursor={page['page']['next_cursor']}")
    assert [row["id"] for row in page["data"] + rest["data"]] == [low[7]["id"], low[30]["id"], low[90]["id"]]
    assert page["page"]["total"] == rest["page"]["total"] == 3 and rest["page"]["has_more"] is False

    other_sort = await api.get(f"/v1/predictions?sort=probability&cursor={first['page']['next_cursor']}",
                               headers=tenant.headers())
    assert other_sort.status_code == 400
    assert other_sort.json()["error"]["message"] == "malformed cursor token"


@pytest.mark.parametrize(("query", "field"), [
    ("status=open", "status"), ("status=active,closed", "status"), ("impact=severe", "impact"),
    ("min_probability=1.5", "min_probability"), ("min_probability=-0.1", "min_probability"),
    ("min_probability=likely", "min_probability"), ("window_days=0", "window_days"),
    ("window_days=week", "window_days"), ("pattern_id=iss_01HZZZZZZZZZZZZZZZZZZZZZZZ", "pattern_id"),
    ("pattern_id=nope", "pattern_id"), ("sort=-likelihood", "sort"), ("sort=pattern_id", "sort"),
    ("cursor=not-a-cursor", "cursor"), ("limit=0", "limit"), ("limit=101", "limit"),
])
async def test_a_bad_filter_value_is_a_validation_error_in_the_envelope(api: Client, tenant: Tenant, query: str,
                                                                        field: str) -> None:
    response = await api.get(f"/v1/predictions?{query}", headers=tenant.headers())

    assert_validation_error(response, field)
