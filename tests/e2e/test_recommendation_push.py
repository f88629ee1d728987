"""Pushing a recommendation to an issue tracker, end to end: the API creates the ticket at a local server speaking
Jira Cloud's and GitHub's APIs through the workspace's connector, and the recommendation shows it from then on.

The recommendation is proposed straight through the command runner (as the recommendation worker would): how
workers come to propose is tests/e2e/test_recommendations_api.py's subject, not this one's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from adapters.event_store import EventStore
from adapters.settings import Settings
from api.app import create_app
from commands.caller import Caller
from commands.recommendations import RECOMMENDER_ACTOR
from commands.runner import Context, Decision, run_blocking
from domain.identity.roles import Role
from domain.ids import PatternId, WorkspaceId, render
from domain.recommendations import recommendation as decide
from domain.recommendations.knowledge import PatternFacts, match
from tests.builders import T0
from tests.e2e.conftest import Tenant, Workers
from tests.fake_providers import JIRA_EMAIL, TOKEN, Provider

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ADMIN = Role.TENANT_ADMIN
PATTERN = PatternId("pat_01KV1PX3NR96XJRGD48NNHH431")


@pytest.fixture
async def api(settings: Settings, workers: Workers) -> AsyncIterator[Client]:
    """The app with quick provider timeouts (a failing tracker answers at once)."""
    fast = msgspec.structs.replace(settings, connector_http_timeout_s=2.0, connector_http_attempts=2)
    async with AsyncTestClient(create_app(fast, configure_logging=False)) as client:
        yield client


def proposed(store: EventStore, tenant: Tenant) -> str:
    """A recommendation for a timeout pattern, appended as the recommendation worker appends it."""
    proposal = match(PatternFacts(error_signature="TimeoutError", template="Timeout calling payments-api after <*>ms",
                                  issue_count=6, first_seen_at=T0, last_seen_at=T0 + timedelta(days=3)))[0]
    stream = uuid.uuid4()

    async def deciding(context: Context) -> Decision:
        return Decision(stream, (), decide.create(stream, PATTERN, proposal, context.meta))

    run_blocking(store, Caller(workspace_id=WorkspaceId(tenant.workspace_id), actor=RECOMMENDER_ACTOR), deciding)
    return render("rec", stream)


@pytest.fixture
async def recommendation(api: Client, tenant: Tenant, identity_store: EventStore) -> dict[str, Any]:
    recommendation_id = proposed(identity_store, tenant)
    deadline = time.monotonic() + 30
    while True:
        found = await api.get(f"/v1/recommendations/{recommendation_id}", headers=tenant.headers())
        if found.status_code == 200:
            body: dict[str, Any] = found.json()
            return body
        assert time.monotonic() < deadline, "the recommendations projection never had it"
        await asyncio.sleep(0.02)


async def connector(api: Client, tenant: Tenant, base: str, kind: str, **config: Any) -> str:
    bodies: dict[str, dict[str, Any]] = {
        "github": {"config": {"owner": "acme", "repo": "web", "base_url": base, **config},
                   "credentials": {"token": TOKEN}},
        "jira": {"config": {"site_url": base, **config}, "credentials": {"email": JIRA_EMAIL, "api_token": TOKEN}},
    }
    response = await api.post("/v1/connectors", json={"type": kind, **bodies[kind]}, headers=tenant.headers(ADMIN))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def push(api: Client, tenant: Tenant, recommendation_id: str, tracker: str, project: str,
               headers: dict[str, str] | None = None) -> Any:
    return await api.post(f"/v1/recommendations/{recommendation_id}/push", json={"tracker": tracker,
                                                                                  "project": project},
                          headers={**tenant.headers(), **(headers or {})})


async def test_a_push_to_jira_creates_one_task_and_the_recommendation_shows_its_ticket(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], recommendation: dict[str, Any]) -> None:
    base, state = provider
    connector_id = await connector(api, tenant, base, "jira")

    pushed = await push(api, tenant, recommendation["id"], "jira", "RISK")

    assert pushed.status_code == 201, pushed.text
    ticket = pushed.json()["ticket"]
    assert ticket["tracker"] == "jira" and ticket["project"] == "RISK" and ticket["key"] == "RISK-1"
    assert ticket["url"] == f"{base}/browse/RISK-1" and ticket["connector_id"] == connector_id
    assert ticket["pushed_at"] and pushed.headers["location"] == ticket["url"]
    assert pushed.json()["version"] == recommendation["version"] + 1
    [(kind, body)] = state.created
    fields = body["fields"]
    assert kind == "jira" and fields["summary"] == recommendation["title"]
    described = str(fields["description"])
    assert recommendation["overview"] in described and recommendation["id"] in described
    assert all(step["title"] in described for step in recommendation["steps"])
    read = (await api.get(f"/v1/recommendations/{recommendation['id']}", headers=tenant.headers())).json()
    assert read["ticket"] == ticket and read["tickets"] == [ticket]


async def test_pushing_again_to_the_same_project_answers_the_same_ticket_and_creates_nothing(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], recommendation: dict[str, Any]) -> None:
    base, state = provider
    await connector(api, tenant, base, "jira")
    first = await push(api, tenant, recommendation["id"], "jira", "RISK")

    again = await push(api, tenant, recommendation["id"], "jira", "RISK")

    assert first.status_code == 201 and again.status_code == 200, again.text
    assert again.json()["ticket"] == first.json()["ticket"] and again.json()["version"] == first.json()["version"]
    assert len(state.created) == 1


async def test_an_idempotent_retry_answers_the_first_push(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], recommendation: dict[str, Any]) -> None:
    base, state = provider
    await connector(api, tenant, base, "jira")
    key = {"Idempotency-Key": uuid.uuid4().hex}

    first = await push(api, tenant, recommendation["id"], "jira", "RISK", key)
    retry = await push(api, tenant, recommendation["id"], "jira", "RISK", key)

    assert first.status_code == retry.status_code == 201 and retry.headers["idempotency-replayed"] == "true"
    assert retry.json() == first.json() and len(state.created) == 1


async def test_a_push_to_github_opens_an_issue_in_the_named_repository(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], recommendation: dict[str, Any]) -> None:
    base, state = provider
    await connector(api, tenant, base, "jira")
    await connector(api, tenant, base, "github")
    await push(api, tenant, recommendation["id"], "jira", "RISK")

    pushed = await push(api, tenant, recommendation["id"], "github", "acme/api")

    assert pushed.status_code == 201, pushed.text
    body = pushed.json()
    assert body["ticket"]["key"] == "acme/api#1" and body["ticket"]["url"] == "https://github.com/acme/api/issues/1"
    assert [t["tracker"] for t in body["tickets"]] == ["jira", "github"]
    kind, created = state.created[-1]
    assert kind == "github/acme/api" and created["title"] == recommendation["title"]
    assert recommendation["steps"][0]["title"] in created["body"]


async def test_without_a_connected_tracker_the_push_is_refused(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], recommendation: dict[str, Any]) -> None:
    base, state = provider
    paused = await connector(api, tenant, base, "github")
    assert (await api.post(f"/v1/connectors/{paused}/pause", headers=tenant.headers(ADMIN))).status_code == 200

    no_jira = await push(api, tenant, recommendation["id"], "jira", "RISK")
    only_paused = await push(api, tenant, recommendation["id"], "github", "acme/web")

    for refused in (no_jira, only_paused):
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "tracker_not_connected"
    assert state.created == []


async def test_an_unsupported_tracker_or_a_misshapen_project_is_a_validation_error(
        api: Client, tenant: Tenant, recommendation: dict[str, Any]) -> None:
    linear = await push(api, tenant, recommendation["id"], "linear", "ENG")
    repository_for_jira = await push(api, tenant, recommendation["id"], "jira", "acme/web")

    assert linear.status_code == 400 and linear.json()["error"]["code"] == "validation_error"
    assert linear.json()["error"]["details"]["field"] == "tracker"
    assert "github, jira" in linear.json()["error"]["message"]
    assert repository_for_jira.status_code == 400
    assert repository_for_jira.json()["error"]["details"]["field"] == "project"


async def test_a_failing_tracker_is_a_502_and_nothing_is_recorded(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], recommendation: dict[str, Any]) -> None:
    base, state = provider
    await connector(api, tenant, base, "jira")
    state.fault("/rest/api/3/issue", "500")

    failed = await push(api, tenant, recommendation["id"], "jira", "RISK")

    assert failed.status_code == 502, failed.text
    error = failed.json()["error"]
    assert error["code"] == "provider_error" and error["details"] == {"tracker": "jira", "outcome": "unreachable"}
    assert len([r for r in state.requests if r[0] == "/rest/api/3/issue"]) == 1  # a create is never re-sent
    read = (await api.get(f"/v1/recommendations/{recommendation['id']}", headers=tenant.headers())).json()
    assert read["ticket"] is None and read["tickets"] == [] and read["version"] == recommendation["version"]
    retried = await push(api, tenant, recommendation["id"], "jira", "RISK")
    assert retried.status_code == 201 and retried.json()["ticket"]["key"] == "RISK-1"


async def test_a_ticket_the_tracker_refuses_is_a_422_with_its_reasons(
        api: Client, tenant: Tenant, provider: tuple[str, Provider], recommendation: dict[str, Any]) -> None:
    base, state = provider
    state.jira_projects = {"OPS"}
    await connector(api, tenant, base, "jira")

    refused = await push(api, tenant, recommendation["id"], "jira", "RISK")

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "tracker_rejected"
    assert "Specify a valid project ID or key" in refused.json()["error"]["message"]


async def test_viewers_may_not_push_and_unknown_recommendations_are_not_found(
        api: Client, tenant: Tenant, other_tenant: Tenant, provider: tuple[str, Provider],
        recommendation: dict[str, Any]) -> None:
    base, state = provider
    await connector(api, tenant, base, "jira")

    viewer = await api.post(f"/v1/recommendations/{recommendation['id']}/push",
                            json={"tracker": "jira", "project": "RISK"}, headers=tenant.member_headers(Role.VIEWER))
    missing = await push(api, tenant, "rec_01HZZZZZZZZZZZZZZZZZZZZZZZ", "jira", "RISK")
    elsewhere = await push(api, other_tenant, recommendation["id"], "jira", "RISK")

    assert viewer.status_code == 403
    assert missing.status_code == 404 and elsewhere.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert state.created == []
