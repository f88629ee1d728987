"""E-mail without SMTP_URL: the delivery is recorded as skipped with its reason, never silently dropped."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from api.app import create_app
from tests.e2e.channels_support import ChannelWorker, deliveries, open_issue, set_preferences
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.webhooks_support import Clock

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture(scope="module")
def no_smtp(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, smtp_url="", channels_poll_interval_s=0.05)


@pytest.fixture(scope="module")
def worker(no_smtp: Settings, workers: Workers) -> Iterator[ChannelWorker]:
    with ChannelWorker(no_smtp, Clock()) as running:
        yield running


@pytest.fixture
async def api(no_smtp: Settings, worker: ChannelWorker) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(no_smtp, configure_logging=False)) as client:
        yield client


async def test_email_without_smtp_is_recorded_as_skipped_with_the_reason(
        api: Client, tenant: Tenant, no_smtp: Settings) -> None:
    await set_preferences(api, tenant.headers(), events={"issue.created": {"email": True}})

    await open_issue(api, tenant.headers(), "Queue backlog")

    deadline = time.monotonic() + 15
    while not (rows := deliveries(no_smtp, tenant.workspace_id)) or rows[0]["status"] == "pending":
        assert time.monotonic() < deadline, "the worker never settled the e-mail delivery"
        time.sleep(0.02)
    [row] = rows
    assert (row["channel"], row["status"], row["last_error"], row["sent_at"]) == (
        "email", "skipped", "SMTP_URL is not configured: e-mail is not sent", None)
