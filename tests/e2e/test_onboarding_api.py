"""The setup wizard's progress through the public API: five steps, any order, current = first incomplete."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from domain.identity.roles import Role
from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
STEPS = ["connect_source", "invite_team", "review_insights", "configure_alerts", "generate_report"]
ONBOARDING_KEYS = {"current_step", "completed_steps", "workspace_created", "members_invited", "connectors_connected",
                   "alert_rule_created", "first_sync", "updated_at"}


async def complete(api: Client, tenant: Tenant, step: str) -> dict[str, object]:
    response = await api.post(f"/v1/onboarding/steps/{step}/complete", headers=tenant.headers(Role.TENANT_ADMIN))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_new_workspace_starts_at_connect_source_with_nothing_done(api: Client, tenant: Tenant) -> None:
    response = await api.get("/v1/onboarding", headers=tenant.headers(Role.VIEWER))

    body = response.json()
    assert response.status_code == 200 and set(body) == ONBOARDING_KEYS
    assert (body["current_step"], body["completed_steps"], body["workspace_created"]) == ("connect_source", [], True)
    assert (body["members_invited"], body["connectors_connected"], body["alert_rule_created"]) == (0, 0, False)
    assert body["first_sync"] == {"status": "not_started", "issues_ingested": 0}


async def test_progress_counts_connected_connectors_and_alert_rules(api: Client, tenant: Tenant) -> None:
    connector = await api.post("/v1/connectors", headers=tenant.headers(Role.TENANT_ADMIN), json={
        "type": "github", "config": {"owner": "acme", "repo": "web"}, "credentials": {"token": "t"}})
    assert connector.status_code == 201 and connector.json()["status"] == "connected", connector.text
    rule = await api.post("/v1/alert-rules", headers=tenant.headers(Role.TENANT_ADMIN), json={
        "name": "checkout", "scope": "global", "threshold": {"probability": 0.8, "window_days": 7}})
    assert rule.status_code == 201, rule.text

    body = (await api.get("/v1/onboarding", headers=tenant.headers(Role.VIEWER))).json()

    assert (body["connectors_connected"], body["alert_rule_created"]) == (1, True)
    deleted = await api.delete(f"/v1/connectors/{connector.json()['id']}", headers=tenant.headers(Role.TENANT_ADMIN))
    assert deleted.status_code == 204
    after = (await api.get("/v1/onboarding", headers=tenant.headers(Role.VIEWER))).json()
    assert after["connectors_connected"] == 0


async def test_completing_a_step_answers_the_documented_shape_and_moves_to_the_next_incomplete_step(
        api: Client, tenant: Tenant) -> None:
    body = await complete(api, tenant, "connect_source")

    assert set(body) == {"step", "completed", "onboarding"} and set(body["onboarding"]) == ONBOARDING_KEYS  # type: ignore[arg-type]
    assert (body["step"], body["completed"]) == ("connect_source", True)
    assert body["onboarding"]["current_step"] == "invite_team"  # type: ignore[index]
    after = (await api.get("/v1/onboarding", headers=tenant.headers())).json()
    assert after == body["onboarding"]


async def test_steps_complete_in_any_order_and_the_current_step_is_the_first_incomplete_one(
        api: Client, tenant: Tenant) -> None:
    await complete(api, tenant, "review_insights")
    body = await complete(api, tenant, "connect_source")

    assert body["onboarding"]["current_step"] == "invite_team"  # type: ignore[index]
    assert body["onboarding"]["completed_steps"] == ["connect_source", "review_insights"]  # type: ignore[index]


async def test_completing_a_completed_step_is_a_200_that_records_nothing(api: Client, tenant: Tenant) -> None:
    first = await api.post("/v1/onboarding/steps/connect_source/complete", headers=tenant.headers(Role.TENANT_ADMIN))

    again = await api.post("/v1/onboarding/steps/connect_source/complete", headers=tenant.headers(Role.TENANT_ADMIN))

    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"] == '"1"'
    assert again.headers["x-causeloop-position"] == "0"


async def test_after_the_last_step_there_is_no_current_step(api: Client, tenant: Tenant) -> None:
    for step in STEPS:
        body = await complete(api, tenant, step)

    assert body["onboarding"]["current_step"] is None  # type: ignore[index]
    assert body["onboarding"]["completed_steps"] == STEPS  # type: ignore[index]


async def test_an_unknown_step_is_404(api: Client, tenant: Tenant) -> None:
    response = await api.post("/v1/onboarding/steps/launch_rocket/complete",
                              headers=tenant.headers(Role.TENANT_ADMIN))

    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


async def test_a_viewer_sees_onboarding_but_cannot_complete_steps(api: Client, tenant: Tenant) -> None:
    response = await api.post("/v1/onboarding/steps/connect_source/complete", headers=tenant.headers(Role.VIEWER))

    assert response.status_code == 403
    assert (await api.get("/v1/onboarding", headers=tenant.headers(Role.VIEWER))).status_code == 200


async def test_members_and_ingested_issues_show_in_the_progress(api: Client, tenant: Tenant) -> None:
    tenant.member_headers(Role.ANALYST)
    await api.post("/v1/issues", json={"title": "First sync"}, headers=tenant.headers())

    body = (await api.get("/v1/onboarding", headers=tenant.headers())).json()

    assert body["members_invited"] == 1
    assert body["first_sync"] == {"status": "completed", "issues_ingested": 1}


async def test_another_workspace_has_its_own_onboarding(api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    await complete(api, tenant, "connect_source")

    body = (await api.get("/v1/onboarding", headers=other_tenant.headers())).json()

    assert (body["current_step"], body["completed_steps"]) == ("connect_source", [])
