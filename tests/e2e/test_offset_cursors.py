"""Lists whose order moves while they are read (patterns, predictions, alert rules, recommendations, watched patterns)
page by offset under a signed cursor, as every other list pages: `limit`, `cursor`, `page.next_cursor`."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]


async def pages(api: Client, tenant: Tenant, path: str) -> list[dict[str, Any]]:
    """Every page of `path` (two rows a page), following `next_cursor` to the end."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = f"{path}{'&' if '?' in path else '?'}limit=2" + (f"&cursor={cursor}" if cursor else "")
        response = await api.get(query, headers=tenant.headers())
        assert response.status_code == 200, response.text
        body = response.json()
        found.append(body)
        cursor = body["page"]["next_cursor"]
        assert body["page"]["has_more"] is (cursor is not None)
        if cursor is None:
            return found


async def test_patterns_and_alert_rules_page_by_cursor(api: Client, tenant: Tenant) -> None:
    for n in range(3):
        created = await api.post("/v1/patterns", json={"name": f"Hand-made {n}", "risk_score": 10 * n},
                                 headers=tenant.headers())
        assert created.status_code == 201, created.text
        rule = await api.post("/v1/alert-rules", headers=tenant.headers(), json={
            "name": f"rule {n}", "scope": "global", "threshold": {"probability": 0.5, "window_days": 7}})
        assert rule.status_code == 201, rule.text

    for path in ("/v1/patterns?sort=created_at", "/v1/alert-rules"):
        walked = await pages(api, tenant, path)
        assert [len(page["data"]) for page in walked] == [2, 1], path
        assert len({row["id"] for page in walked for row in page["data"]}) == 3
        assert all(page["page"]["total"] == 3 for page in walked)

    first = (await api.get("/v1/patterns?limit=1&sort=created_at", headers=tenant.headers())).json()
    cursor = first["page"]["next_cursor"]
    other_sort = await api.get(f"/v1/patterns?limit=1&sort=-risk_score&cursor={cursor}", headers=tenant.headers())
    tampered = await api.get(f"/v1/patterns?limit=1&sort=created_at&cursor={cursor[:-2]}xx",
                             headers=tenant.headers())
    for refused in (other_sort, tampered):
        assert refused.status_code == 400
        assert refused.json()["error"]["message"] == "malformed cursor token"
