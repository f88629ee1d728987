"""Watching patterns and notification preferences end to end: a watcher's feed hears of a watched pattern's
changes (and nobody else's does), and a user's preferences change what the notifications projection adds to their
feed. Channel secrets are sealed in the store and only ever shown masked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from adapters.event_store import EVENTS_TABLE
from adapters.settings import Settings
from api.core.consistency import POSITION_HEADER
from domain.identity.roles import Role
from projections.notifications.projector import NAME as NOTIFICATIONS
from projections.position_waiter import PositionWaiter
from tests.e2e.conftest import Tenant
from tests.e2e.members_helpers import Member
from tests.e2e.test_service_accounts_api import bearer, create_account, issue_token

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
SLACK = "https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnopqrstWXYZ"
TEAMS = "https://acme.webhook.office.com/webhookb2/1234-abcd/IncomingWebhook/5678/efgh"
PAGERDUTY = "0123456789abcdef0123456789abQRST"


@pytest.fixture
async def notified(settings: Settings) -> AsyncIterator[PositionWaiter]:
    """Waits on the `notifications` projection (commands on other resources settle on their own read model)."""
    waiter = PositionWaiter(settings)
    await waiter.start()
    yield waiter
    await waiter.stop()


async def feed(api: Client, headers: dict[str, str], waiter: PositionWaiter, after: Any) -> list[dict[str, Any]]:
    """The user's feed once the notifications projection has everything up to the response `after`."""
    assert await waiter.wait(NOTIFICATIONS, int(after.headers[POSITION_HEADER]), 30.0)
    response = await api.get("/v1/me/notifications/feed?limit=100", headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def new_pattern(api: Client, tenant: Tenant, name: str = "Checkout timeouts") -> str:
    response = await api.post("/v1/patterns", json={"name": name}, headers=tenant.headers())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def open_issue(api: Client, tenant: Tenant, title: str, severity: str) -> Any:
    response = await api.post("/v1/issues", json={"title": title, "severity": severity}, headers=tenant.headers())
    assert response.status_code == 201, response.text
    return response


def of_type(items: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [item for item in items if item["type"] == kind]


async def test_a_watcher_hears_of_renames_and_status_changes_and_a_bystander_does_not(
        api: Client, tenant: Tenant, notified: PositionWaiter) -> None:
    watcher, bystander = Member(tenant, Role.VIEWER), Member(tenant, Role.ANALYST)
    pattern_id = await new_pattern(api, tenant)

    first = await api.post(f"/v1/patterns/{pattern_id}/watch", headers=watcher.headers)
    again = await api.post(f"/v1/patterns/{pattern_id}/watch", headers=watcher.headers)
    await api.patch(f"/v1/patterns/{pattern_id}", json={"name": "Checkout gateway timeouts"},
                    headers=tenant.headers())
    last = await api.patch(f"/v1/patterns/{pattern_id}", json={"status": "mitigating"}, headers=tenant.headers())

    assert (first.status_code, again.status_code, last.status_code) == (204, 204, 200)
    notices = of_type(await feed(api, watcher.headers, notified, last), "pattern.updated")
    assert [(n["entity_type"], n["entity_id"]) for n in notices] == [("pattern", pattern_id)] * 2
    assert [n["title"] for n in notices] == [
        "Pattern “Checkout gateway timeouts”: now mitigating",
        "Pattern “Checkout gateway timeouts”: renamed (was “Checkout timeouts”)",
    ]
    assert of_type(await feed(api, bystander.headers, notified, last), "pattern.updated") == []
    watched = (await api.get("/v1/me/watched-patterns", headers=watcher.headers)).json()
    assert [(w["pattern_id"], w["name"]) for w in watched["data"]] == [(pattern_id, "Checkout gateway timeouts")]
    assert (await api.get("/v1/me/watched-patterns", headers=bystander.headers)).json()["data"] == []


async def test_a_watcher_hears_when_the_pattern_is_merged_into_another(
        api: Client, tenant: Tenant, notified: PositionWaiter) -> None:
    watcher = Member(tenant, Role.ANALYST)
    source, target = await new_pattern(api, tenant, "Gateway 502s"), await new_pattern(api, tenant, "Gateway errors")
    await api.post(f"/v1/patterns/{source}/watch", headers=watcher.headers)

    merged = await api.post(f"/v1/patterns/{target}/merge", json={"source_pattern_id": source},
                            headers=tenant.headers())

    assert merged.status_code == 200, merged.text
    notices = of_type(await feed(api, watcher.headers, notified, merged), "pattern.updated")
    assert [(n["entity_id"], n["title"]) for n in notices] == [
        (source, f"Pattern “Gateway 502s”: merged into {target}")]


async def test_after_unwatching_no_more_notices_arrive(api: Client, tenant: Tenant, notified: PositionWaiter) -> None:
    watcher = Member(tenant, Role.ANALYST)
    pattern_id = await new_pattern(api, tenant)
    await api.post(f"/v1/patterns/{pattern_id}/watch", headers=watcher.headers)

    gone = await api.delete(f"/v1/patterns/{pattern_id}/watch", headers=watcher.headers)
    again = await api.delete(f"/v1/patterns/{pattern_id}/watch", headers=watcher.headers)
    changed = await api.patch(f"/v1/patterns/{pattern_id}", json={"tags": ["payments"]}, headers=tenant.headers())

    assert (gone.status_code, again.status_code, changed.status_code) == (204, 204, 200)
    assert of_type(await feed(api, watcher.headers, notified, changed), "pattern.updated") == []
    assert (await api.get("/v1/me/watched-patterns", headers=watcher.headers)).json()["data"] == []


async def test_watching_a_pattern_that_is_not_there_is_not_found(api: Client, tenant: Tenant,
                                                                 other_tenant: Tenant) -> None:
    theirs = await new_pattern(api, other_tenant)

    for pattern_id in (theirs, "pat_01HZZZZZZZZZZZZZZZZZZZZZZZ", "not-a-pattern"):
        response = await api.post(f"/v1/patterns/{pattern_id}/watch", headers=tenant.headers())
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"


async def test_preferences_are_the_documented_defaults_until_set(api: Client, tenant: Tenant) -> None:
    response = await api.get("/v1/me/notification-preferences", headers=tenant.headers(Role.VIEWER))

    assert response.status_code == 200
    assert response.json() == {
        "channels": {"email": False, "slack_webhook_url": None, "teams_webhook_url": None,
                     "pagerduty_integration_key": None},
        "min_severity": "p2", "min_risk_score": 70, "digest": "realtime",
        "events": {kind: {"in_app": True, "email": False, "slack": False, "teams": False, "pagerduty": False}
                   for kind in ("issue.created", "pattern.updated", "prediction.alert.fired",
                                "recommendation.created")},
        "updated_at": None,
    }


async def test_channel_secrets_are_sealed_and_only_ever_shown_masked(
        api: Client, tenant: Tenant, settings: Settings) -> None:
    headers = tenant.headers()
    body = {"channels": {"slack_webhook_url": SLACK, "teams_webhook_url": TEAMS,
                         "pagerduty_integration_key": PAGERDUTY},
            "min_severity": "p3", "min_risk_score": 55, "digest": "daily",
            "events": {"pattern.updated": {"in_app": True, "email": True, "slack": True}}}

    put = await api.put("/v1/me/notification-preferences", json=body, headers=headers)
    got = await api.get("/v1/me/notification-preferences", headers=headers)

    assert put.status_code == 200 and got.json() == put.json()
    channels = got.json()["channels"]
    assert channels == {"email": True, "slack_webhook_url": "****WXYZ", "teams_webhook_url": "****efgh",
                        "pagerduty_integration_key": "****QRST"}  # e-mail turns on with an event's e-mail
    assert got.json()["events"]["pattern.updated"] == {"in_app": True, "email": True, "slack": True, "teams": False,
                                                        "pagerduty": False}
    assert (got.json()["min_severity"], got.json()["min_risk_score"], got.json()["digest"]) == ("p3", 55, "daily")
    for secret in (SLACK, TEAMS, PAGERDUTY):
        assert secret not in got.text and secret not in put.text
        assert stored_events_containing(settings, secret) == 0

    resent = await api.put("/v1/me/notification-preferences", headers=headers, json={
        "channels": {**channels, "teams_webhook_url": None}, "digest": "weekly"})
    assert resent.status_code == 200, resent.text
    assert resent.json()["channels"] == {"email": True, "slack_webhook_url": "****WXYZ", "teams_webhook_url": None,
                                         "pagerduty_integration_key": "****QRST"}
    kept = await api.put("/v1/me/notification-preferences", json={}, headers=headers)
    assert kept.json()["channels"] == {"email": False, "slack_webhook_url": "****WXYZ", "teams_webhook_url": None,
                                       "pagerduty_integration_key": "****QRST"}  # left out: kept
    assert kept.json()["digest"] == "realtime" and kept.json()["events"]["pattern.updated"]["email"] is False


def stored_events_containing(settings: Settings, text: str) -> int:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        found = conn.execute(f"SELECT count(*) FROM {EVENTS_TABLE} WHERE position(%s in convert_from(state, 'UTF8'))"
                             " > 0", (text,)).fetchone()
        return int(found[0]) if found else 0


@pytest.mark.parametrize(("body", "field"), [
    ({"channels": {"slack_webhook_url": "http://hooks.slack.com/services/T/B/x"}}, "channels.slack_webhook_url"),
    ({"channels": {"slack_webhook_url": "https://hooks.slack.com.evil.test/x"}}, "channels.slack_webhook_url"),
    ({"channels": {"slack_webhook_url": "https://hooks.slack.com/"}}, "channels.slack_webhook_url"),
    ({"channels": {"slack_webhook_url": "****WXYZ"}}, "channels.slack_webhook_url"),  # masked, nothing stored
    ({"channels": {"teams_webhook_url": "https://webhook.office.com.evil.test/x"}}, "channels.teams_webhook_url"),
    ({"channels": {"teams_webhook_url": "https://user:pw@acme.webhook.office.com/x"}}, "channels.teams_webhook_url"),
    ({"channels": {"pagerduty_integration_key": "tooshort"}}, "channels.pagerduty_integration_key"),
    ({"channels": {"pagerduty_integration_key": "0123456789abcdef0123456789abcd-!"}},
     "channels.pagerduty_integration_key"),
    ({"min_severity": "p5"}, "min_severity"),
    ({"min_risk_score": 101}, "min_risk_score"),
    ({"digest": "monthly"}, "digest"),
    ({"events": {"issue.escalated": {"in_app": False}}}, "events.issue.escalated"),
    ({"events": {"issue.created": {"sms": True}}}, "events.issue.created.sms"),
])
async def test_an_invalid_replacement_is_a_validation_error_naming_the_field(
        api: Client, tenant: Tenant, body: dict[str, Any], field: str) -> None:
    response = await api.put("/v1/me/notification-preferences", json=body, headers=tenant.headers())

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["details"]["field"] == field
    unchanged = await api.get("/v1/me/notification-preferences", headers=tenant.headers())
    assert unchanged.json()["updated_at"] is None


async def test_turning_in_app_off_keeps_that_type_out_of_the_users_feed(
        api: Client, tenant: Tenant, notified: PositionWaiter) -> None:
    quiet, default = Member(tenant, Role.ANALYST), Member(tenant, Role.ANALYST)
    pattern_id = await new_pattern(api, tenant)
    muted = await api.put("/v1/me/notification-preferences", headers=quiet.headers, json={
        "events": {"issue.created": {"in_app": False}, "pattern.updated": {"in_app": False}}})
    for member in (quiet, default):
        await api.post(f"/v1/patterns/{pattern_id}/watch", headers=member.headers)

    await open_issue(api, tenant, "Payment gateway timeout", "critical")
    last = await api.patch(f"/v1/patterns/{pattern_id}", json={"status": "active"}, headers=tenant.headers())

    assert muted.status_code == 200 and muted.json()["events"]["issue.created"]["in_app"] is False
    assert {n["type"] for n in await feed(api, quiet.headers, notified, last)} == set()
    assert {n["type"] for n in await feed(api, default.headers, notified, last)} == {"issue.created",
                                                                                      "pattern.updated"}


async def test_min_severity_keeps_less_severe_new_issues_out_of_the_feed(
        api: Client, tenant: Tenant, notified: PositionWaiter) -> None:
    strict, default = Member(tenant, Role.ANALYST), Member(tenant, Role.ANALYST)
    await api.put("/v1/me/notification-preferences", json={"min_severity": "p1"}, headers=strict.headers)

    for severity in ("critical", "high", "medium", "low"):
        last = await open_issue(api, tenant, f"Disk full ({severity})", severity)

    strict_titles = [n["title"] for n in of_type(await feed(api, strict.headers, notified, last), "issue.created")]
    default_titles = [n["title"] for n in of_type(await feed(api, default.headers, notified, last), "issue.created")]
    assert strict_titles == ["New critical issue: Disk full (critical)"]
    assert default_titles == ["New high issue: Disk full (high)", "New critical issue: Disk full (critical)"]


async def test_a_service_account_neither_watches_nor_has_preferences(api: Client, tenant: Tenant) -> None:
    account = await create_account(api, tenant, role="analyst")
    robot = bearer((await issue_token(api, tenant, account["id"]))["secret"])
    pattern_id = await new_pattern(api, tenant)

    refused = [await api.post(f"/v1/patterns/{pattern_id}/watch", headers=robot),
               await api.get("/v1/me/watched-patterns", headers=robot),
               await api.get("/v1/me/notification-preferences", headers=robot),
               await api.put("/v1/me/notification-preferences", json={}, headers=robot)]

    assert [(r.status_code, r.json()["error"]["code"]) for r in refused] == [(403, "forbidden")] * 4
