"""Notification channels end to end: preferences set through the API, a notice caused through the API (a new
issue), and the channel-delivery worker sending it to Slack, Teams and PagerDuty (pointed at a local HTTP server by
the development-only base URL settings) and to e-mail (a local SMTP server)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import AsyncTestClient
from psycopg.rows import dict_row

from adapters import codec
from adapters.event_store import EventStore
from adapters.settings import Settings
from api.app import create_app
from api.core.consistency import POSITION_HEADER
from projections.notifications import projector
from tests.e2e.channels_support import ChannelWorker, SmtpServer, deliveries, open_issue, set_preferences
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.webhook_receiver import Receiver
from tests.e2e.webhooks_support import Clock

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ON = {"in_app": True, "email": False, "slack": True, "teams": True, "pagerduty": True}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def channel_settings(settings: Settings, receiver: Receiver, smtp: SmtpServer) -> Settings:
    base = receiver.url("")
    return msgspec.structs.replace(settings, notify_slack_base_url=base, notify_teams_base_url=base,
                                   notify_pagerduty_base_url=base, smtp_url=f"smtp://127.0.0.1:{smtp.port}",
                                   channels_retry_base_s=0.2, channels_poll_interval_s=0.05, channels_timeout_s=2.0)


@pytest.fixture(scope="module")
def worker(channel_settings: Settings, clock: Clock, workers: Workers) -> Iterator[ChannelWorker]:
    with ChannelWorker(channel_settings, clock) as running:
        yield running


@pytest.fixture
async def api(channel_settings: Settings, worker: ChannelWorker, clock: Clock) -> AsyncIterator[Client]:
    clock.offset = timedelta(0)
    async with AsyncTestClient(create_app(channel_settings, configure_logging=False)) as client:
        yield client


def hooks() -> tuple[str, str, str]:
    """A Slack URL, a Teams URL and a PagerDuty key of this test's own (the receiver tells them apart by path)."""
    token = uuid.uuid4().hex
    return (f"https://hooks.slack.com/services/T0/B0/{token}",
            f"https://acme.webhook.office.com/webhookb2/{token}/IncomingWebhook/x", token)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def pagerduty_events(receiver: Receiver, key: str) -> list[dict[str, Any]]:
    with receiver.lock:
        bodies = [json.loads(r.body) for r in receiver.received["/v2/enqueue"]]
    return [body for body in bodies if body["routing_key"] == key]


def eventually(probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, "the worker never got there"
        time.sleep(0.02)
    return found


def settled(settings: Settings, tenant: Tenant, count: int) -> list[dict[str, Any]]:
    """The workspace's delivery rows once `count` of them are no longer pending."""
    return eventually(lambda: (rows := deliveries(settings, tenant.workspace_id))
                      and sum(r["status"] != "pending" for r in rows) >= count and rows)  # type: ignore[no-any-return]


async def test_a_notice_goes_once_to_each_channel_switched_on_for_its_type(
        api: Client, tenant: Tenant, receiver: Receiver, channel_settings: Settings) -> None:
    slack, teams, key = hooks()
    await set_preferences(api, tenant.headers(), channels={"slack_webhook_url": slack, "teams_webhook_url": teams,
                                                          "pagerduty_integration_key": key},
                          events={"issue.created": ON})

    issue_id = await open_issue(api, tenant.headers(), "Checkout is down")

    rows = settled(channel_settings, tenant, 3)
    assert sorted((r["channel"], r["status"], r["attempts"]) for r in rows) == [
        ("pagerduty", "sent", 1), ("slack", "sent", 1), ("teams", "sent", 1)]
    [to_slack] = receiver.wait_for(path_of(slack))
    [to_teams] = receiver.wait_for(path_of(teams))
    [to_pagerduty] = pagerduty_events(receiver, key)
    assert json.loads(to_slack.body)["text"].startswith("*New critical issue: Checkout is down*")
    assert issue_id in json.loads(to_slack.body)["text"]
    card = json.loads(to_teams.body)
    assert (card["@type"], card["title"]) == ("MessageCard", "New critical issue: Checkout is down")
    assert to_pagerduty["event_action"] == "trigger"
    assert to_pagerduty["dedup_key"] == f"causeloop:{rows[0]['notification_id']}"
    assert {k: to_pagerduty["payload"][k] for k in ("summary", "source", "severity")} == {
        "summary": "New critical issue: Checkout is down", "source": "causeloop", "severity": "critical"}


async def test_a_receiver_answering_500_gets_a_retry(
        api: Client, tenant: Tenant, receiver: Receiver, channel_settings: Settings) -> None:
    slack, _, _ = hooks()
    receiver.behaviour[path_of(slack)] = [500]
    await set_preferences(api, tenant.headers(), channels={"slack_webhook_url": slack},
                          events={"issue.created": {"slack": True}})

    await open_issue(api, tenant.headers(), "Payments time out")

    [row] = settled(channel_settings, tenant, 1)
    assert (row["status"], row["attempts"], row["codes"]) == ("sent", 2, [500, 200])
    assert len(receiver.wait_for(path_of(slack), 2)) == 2


async def test_a_channel_switched_off_or_a_notice_below_the_floor_sends_nothing(
        api: Client, tenant: Tenant, receiver: Receiver, channel_settings: Settings) -> None:
    slack, teams, _ = hooks()
    await set_preferences(api, tenant.headers(), channels={"slack_webhook_url": slack, "teams_webhook_url": teams},
                          min_severity="p2", events={"issue.created": {"slack": True, "teams": False}})

    await open_issue(api, tenant.headers(), "A low one", severity="low")
    await open_issue(api, tenant.headers(), "A high one", severity="high")

    [row] = settled(channel_settings, tenant, 1)
    assert (row["channel"], row["title"], row["status"]) == ("slack", "New high issue: A high one", "sent")
    [message] = receiver.wait_for(path_of(slack))
    assert json.loads(message.body)["text"].startswith("*New high issue: A high one*")
    assert receiver.received[path_of(teams)] == []


async def test_email_goes_to_the_users_address_through_smtp(
        api: Client, tenant: Tenant, smtp: SmtpServer, channel_settings: Settings) -> None:
    await set_preferences(api, tenant.headers(), events={"issue.created": {"email": True}})

    await open_issue(api, tenant.headers(), "Disk full on db-1")

    mail = smtp.wait_for(tenant.owner_email)
    assert "Subject: [Causeloop] New critical issue: Disk full on db-1" in mail.data
    [row] = settled(channel_settings, tenant, 1)
    assert (row["channel"], row["status"]) == ("email", "sent")


async def test_a_digest_sends_the_periods_notices_as_one_message_when_it_ends(
        api: Client, tenant: Tenant, receiver: Receiver, clock: Clock, channel_settings: Settings) -> None:
    slack, _, _ = hooks()
    await set_preferences(api, tenant.headers(), channels={"slack_webhook_url": slack}, digest="hourly",
                          events={"issue.created": {"slack": True}})
    await open_issue(api, tenant.headers(), "First")
    await open_issue(api, tenant.headers(), "Second")
    rows = eventually(lambda: len(found := deliveries(channel_settings, tenant.workspace_id)) == 2 and found)
    assert {r["batch"] for r in rows} == {rows[0]["next_attempt_at"]} and rows[0]["status"] == "pending"

    clock.offset = rows[0]["batch"] - rows[0]["created_at"] + timedelta(seconds=1)

    [message] = receiver.wait_for(path_of(slack))
    text = json.loads(message.body)["text"]
    assert text.startswith("*2 Causeloop notifications (hourly digest)*\n• New critical issue: First")
    assert "• New critical issue: Second" in text
    assert [r["status"] for r in settled(channel_settings, tenant, 2)] == ["sent", "sent"]


async def test_the_same_event_projected_again_queues_and_sends_nothing_more(
        api: Client, tenant: Tenant, receiver: Receiver, channel_settings: Settings) -> None:
    slack, _, _ = hooks()
    await set_preferences(api, tenant.headers(), channels={"slack_webhook_url": slack},
                          events={"issue.created": {"slack": True}})
    response = await api.post("/v1/issues", json={"title": "Twice?", "severity": "critical"},
                              headers=tenant.headers())
    [before] = settled(channel_settings, tenant, 1)
    position = int(response.headers[POSITION_HEADER])
    store = EventStore(channel_settings, pool_size=1)
    try:
        [(at, state)] = store.read_raw(position - 1, 1)
    finally:
        store.close()

    async with await psycopg.AsyncConnection.connect(channel_settings.database_url, row_factory=dict_row,
                                                     options=f"-c search_path={channel_settings.database_schema}"
                                                     ) as conn:
        event = codec.decode(state)
        assert type(event).__name__ == "IssueOpened"
        await projector.project(conn, [(at, event)])

    assert deliveries(channel_settings, tenant.workspace_id) == [before]
    assert len(receiver.wait_for(path_of(slack))) == 1
