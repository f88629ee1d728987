"""The input policy (api/core/input_policy.py) through the public API: each finding of the hostile review that let a
request be accepted and then never projected (or answered 500) is now a clean 400, naming what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from projections.position_waiter import PositionWaiter
from tests.e2e.conftest import Tenant
from tests.e2e.members_helpers import Client, owner_headers

pytestmark = [pytest.mark.postgres, pytest.mark.nats]

NUL = "a\u0000b"


def assert_refused(response: Any, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["trace_id"]
    assert field in str(error["details"]), error


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


async def test_nul_in_any_text_field_is_refused_before_anything_is_written(api: Client, tenant: Tenant) -> None:
    owner = owner_headers(tenant)
    issue = (await api.post("/v1/issues", json={"title": "clean"}, headers=owner)).json()
    account = (await api.post("/v1/service-accounts", json={"name": "bot", "role": "viewer"}, headers=owner)).json()
    attempts = {
        "title": api.post("/v1/issues", json={"title": NUL}, headers=owner),
        "metadata.k": api.post("/v1/issues", json={"title": "t", "metadata": {"k": NUL}}, headers=owner),
        "metadata": api.post("/v1/issues", json={"title": "t", "metadata": {NUL: 1}}, headers=owner),
        "body": api.patch(f"/v1/issues/{issue['id']}", json={"body": NUL}, headers=owner),
        "body ": api.post(f"/v1/issues/{issue['id']}/comments", json={"body": NUL}, headers=owner),
        "value": api.post("/v1/issues/bulk", json={"ids": [issue["id"]], "op": "set_team", "value": NUL},
                          headers=owner),
        "name": api.patch("/v1/workspace", json={"name": NUL}, headers=owner),
        "name ": api.patch("/v1/users/me", json={"name": NUL}, headers=owner),
        "name  ": api.post("/v1/api-tokens", json={"name": NUL, "scopes": ["issues:read"]}, headers=owner),
        "name   ": api.post("/v1/service-accounts", json={"name": NUL, "role": "viewer"}, headers=owner),
        "name    ": api.patch(f"/v1/service-accounts/{account['id']}", json={"name": NUL}, headers=owner),
    }
    for field, attempt in attempts.items():
        assert_refused(await attempt, field.strip())

    listed = (await api.get("/v1/issues", headers=owner)).json()
    assert [i["title"] for i in listed["data"]] == ["clean"]
    assert listed["data"][0]["body"] is None and listed["data"][0]["team"] is None


async def test_a_lone_surrogate_in_text_is_refused(api: Client, tenant: Tenant) -> None:
    response = await api.post("/v1/issues", content=b'{"title": "a\\ud800b"}',
                              headers={**tenant.headers(), "Content-Type": "application/json"})

    assert_refused(response, "body")


@pytest.mark.parametrize("instant", ["9999-12-31T23:59:59.999999-23:59", "0001-01-01T00:00:00+23:59",
                                     "9000-01-01T00:00:00Z", "1899-12-31T23:59:59Z", "2026-01-01T00:00:00"])
async def test_datetimes_outside_the_range_or_without_offset_are_refused(api: Client, tenant: Tenant,
                                                                         instant: str) -> None:
    response = await api.post("/v1/issues", json={"title": "t", "source_created_at": instant},
                              headers=tenant.headers())

    assert_refused(response, "source_created_at")


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/issues", {"title": "t", "source_created_at": 0}, "source_created_at"),
    ("/v1/issues", {"title": "t", "source_created_at": 1.7e9}, "source_created_at"),
    ("/v1/settings/ai", {"auto_link": 0}, "auto_link"),
    ("/v1/settings/ai", {"proof_window_days": "30"}, "proof_window_days"),
])
async def test_a_body_is_decoded_strictly_against_its_documented_types(api: Client, tenant: Tenant, path: str,
                                                                        body: dict[str, Any], field: str) -> None:
    send = api.post if path == "/v1/issues" else api.patch
    response = await send(path, json=body, headers=owner_headers(tenant))

    assert_refused(response, field)
    assert (await api.get("/v1/issues", headers=tenant.headers())).json()["data"] == []
    assert (await api.get("/v1/settings/ai", headers=tenant.headers())).json()["version"] == 0


@pytest.mark.parametrize("instant", ["0.5", "1700000000", "2026-01-01T00:00:00", "9000-01-01T00:00:00Z"])
async def test_a_datetime_in_the_query_needs_an_offset_and_the_range(api: Client, tenant: Tenant,
                                                                       instant: str) -> None:
    response = await api.get("/v1/issues", params={"created_before": instant}, headers=tenant.headers())

    assert_refused(response, "created_before")


async def test_datetimes_are_normalized_to_utc(api: Client, tenant: Tenant) -> None:
    created = await api.post("/v1/issues", json={"title": "t", "source_created_at": "2026-03-01T01:30:00+02:00"},
                             headers=tenant.headers())

    assert created.status_code == 201, created.text
    fetched = (await api.get(f"/v1/issues/{created.json()['id']}", headers=tenant.headers())).json()
    assert created.json()["source_created_at"] == fetched["source_created_at"] == "2026-02-28T23:30:00Z"


async def test_metadata_nested_too_deeply_is_refused_but_the_bound_itself_is_audited(
        api: Client, tenant: Tenant, audited: PositionWaiter) -> None:
    deep = await api.post("/v1/issues", json={"title": "t", "metadata": nested(900)}, headers=tenant.headers())
    at_bound = await api.post("/v1/issues", json={"title": "t", "metadata": nested(31)}, headers=tenant.headers())

    assert_refused(deep, "metadata")
    assert at_bound.status_code == 201, at_bound.text
    assert await audited.wait("audit", int(at_bound.headers["x-causeloop-position"]), 10.0)
    log = (await api.get("/v1/audit-log?action=issue.created", headers=owner_headers(tenant))).json()
    assert [entry["target"]["id"] for entry in log["data"]] == [at_bound.json()["id"]]


@pytest.mark.parametrize("path", ["/v1/auth/refresh", "/v1/issues"])
async def test_a_body_nested_past_what_the_parser_can_follow_is_400_not_500(api: Client, tenant: Tenant,
                                                                             path: str) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = await api.post(path, content=body, headers={**tenant.headers(), "Content-Type": "application/json"})

    assert_refused(response, "body")


@pytest.mark.parametrize("query", ["q", "pattern_id", "source", "team", "assignee_id"])
async def test_nul_in_an_issue_list_query_is_400(api: Client, tenant: Tenant, query: str) -> None:
    response = await api.get(f"/v1/issues?{query}=a%00b", headers=tenant.headers())

    assert_refused(response, "query")


@pytest.mark.parametrize("query", ["q", "actor_id", "action"])
async def test_nul_in_an_audit_log_query_is_400(api: Client, tenant: Tenant, query: str) -> None:
    response = await api.get(f"/v1/audit-log?{query}=a%00b", headers=owner_headers(tenant))

    assert_refused(response, "query")


async def test_a_query_that_is_not_utf8_is_400(api: Client, tenant: Tenant) -> None:
    response = await api.get("/v1/issues?q=%ff%fe", headers=tenant.headers())

    assert_refused(response, "query")


async def test_a_scim_start_index_past_any_integer_is_an_empty_page(api: Client, tenant: Tenant) -> None:
    created = await api.post("/v1/settings/scim-tokens", json={"name": "idp"}, headers=owner_headers(tenant))
    headers = {"Authorization": f"Bearer {created.json()['secret']}"}

    response = await api.get("/scim/v2/Users?startIndex=99999999999999999999", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["Resources"] == [] and response.json()["totalResults"] >= 1
