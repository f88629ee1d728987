"""`GET /v1/patterns` filters and sorts as the contract names them: status, q, domain, risk_min/risk_max (and the
400 when the range is reversed), sorts by risk_score and issue_count, over hand-made patterns (their risk is the
one they were given until they have a member)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]


async def names(api: Client, tenant: Tenant, query: str) -> list[str]:
    response = await api.get(f"/v1/patterns?{query}", headers=tenant.headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return [row["name"] for row in body["data"]]


async def test_patterns_filter_and_sort_as_documented(api: Client, tenant: Tenant) -> None:
    for name, risk, domain, status in (("Checkout timeouts", 80, "payments", "active"),
                                       ("Login throttling", 50, "auth", "emerging"),
                                       ("Nightly export stalls", 20, "reporting", "active")):
        created = await api.post("/v1/patterns", headers=tenant.headers(), json={
            "name": name, "risk_score": risk, "status": status, "fingerprint": {"domain": domain}})
        assert created.status_code == 201, created.text

    assert await names(api, tenant, "") == ["Checkout timeouts", "Login throttling", "Nightly export stalls"]
    assert await names(api, tenant, "sort=risk_score") == ["Nightly export stalls", "Login throttling",
                                                          "Checkout timeouts"]
    assert await names(api, tenant, "risk_min=40&risk_max=60") == ["Login throttling"]
    assert await names(api, tenant, "risk_min=60") == ["Checkout timeouts"]
    assert await names(api, tenant, "domain=auth") == ["Login throttling"]
    assert await names(api, tenant, "status=active&sort=risk_score") == ["Nightly export stalls",
                                                                         "Checkout timeouts"]
    assert await names(api, tenant, "q=export") == ["Nightly export stalls"]
    assert sorted(await names(api, tenant, "sort=-issue_count&risk_max=50")) == ["Login throttling",
                                                                              "Nightly export stalls"]

    for query, field in (("risk_min=60&risk_max=40", "risk_max"), ("status=closed", "status"),
                         ("sort=-name", "sort"), ("risk_min=101", "risk_min")):
        refused = await api.get(f"/v1/patterns?{query}", headers=tenant.headers())
        assert refused.status_code == 400, query
        error = refused.json()["error"]
        assert error["code"] == "validation_error" and field in str(error["details"]), (query, error)
