"""Delivery decisions (projections/webhooks/dispatch.py) applied straight to Postgres: stream order decides which
endpoints get an event, the connector filter, one row per (endpoint, webhook event) however often a batch is
applied, and the documented body."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import msgspec
import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.codec import AnyEvent
from adapters.http_post import PostClient
from adapters.postgres import AsyncConn, create_pool, writer_transaction
from adapters.settings import Settings
from domain.events import envelope
from domain.ids import WorkspaceId, render
from domain.issues.events import IssueEvent, Status
from domain.issues.issue import change_status, open_issue, project_issue
from domain.webhooks import endpoint as decide
from domain.webhooks.endpoint import EndpointEdit
from domain.webhooks.events import EndpointStatus
from domain.webhooks.outbound import RULES, always
from projections.webhooks import dispatch
from tests.builders import T0, T1, meta
from workers.webhook_delivery import Claimed, Outcome, Sender

pytestmark = pytest.mark.postgres


class IssueIngestedForTest(IssueEvent, frozen=True, kw_only=True):
    """Stands in for the ingestion events to come, which carry the connector they came through."""

    category: ClassVar[str] = "issue"
    connector_id: str


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[AsyncConnectionPool[AsyncConn]]:
    opened = create_pool(settings, min_size=1, max_size=2, name="dispatch-test")
    await opened.open()
    yield opened
    await opened.close()


def workspace() -> WorkspaceId:
    return WorkspaceId(render("ws", uuid.uuid4()))


def endpoint(ws: WorkspaceId, types: list[str], connector: str | None = None) -> Any:
    return decide.create_endpoint(stream_id=uuid.uuid4(), meta=meta(T0, ws), url="https://hooks.example.com/x",
                                  event_types=types, connector_id=connector, description="", secret_ciphertext="v1.x")


async def apply(pool: AsyncConnectionPool[AsyncConn], events: Sequence[Any], start: int = 1) -> None:
    batch: list[tuple[int, AnyEvent]] = [(start + i, event) for i, event in enumerate(events)]
    async with writer_transaction(pool) as conn:
        await dispatch.project(conn, batch)


async def rows(pool: AsyncConnectionPool[AsyncConn], ws: str) -> list[dict[str, Any]]:
    async with writer_transaction(pool) as conn:
        cur = await conn.execute("SELECT id, workspace_id, endpoint_id, event_id, event_type, kind, payload"
                                 " FROM webhook_deliveries WHERE workspace_id = %s"
                                 " ORDER BY position, endpoint_id, event_type", (ws,))
        return await cur.fetchall()


async def test_an_endpoint_gets_the_events_after_it_and_none_after_it_is_deleted_or_disabled(
        pool: AsyncConnectionPool[AsyncConn]) -> None:
    ws = workspace()
    early = open_issue(issue_id=uuid.uuid4(), meta=meta(T0, ws), title="before the endpoint")
    created = endpoint(ws, ["issue.created", "issue.resolved", "issue.updated"])
    hook = decide.project_endpoint(None, [created])
    assert hook is not None
    opened = open_issue(issue_id=uuid.uuid4(), meta=meta(T1, ws), title="after")
    issue = project_issue(None, [opened])
    assert issue is not None
    resolved = change_status(issue, Status.RESOLVED, meta(T1, ws))
    (disabled,) = decide.update_endpoint(hook, EndpointEdit(status=EndpointStatus.DISABLED), meta(T1, ws))
    ignored = open_issue(issue_id=uuid.uuid4(), meta=meta(T1, ws), title="while disabled")

    await apply(pool, [early, created, opened, *resolved, disabled, ignored])
    await apply(pool, [early, created, opened, *resolved, disabled, ignored])  # the same batch again
    found = await rows(pool, ws)

    assert [(row["event_type"], msgspec.json.decode(row["payload"])["data"]["issue_id"]) for row in found] == [
        ("issue.created", render("iss", opened.originator_id)),
        ("issue.resolved", render("iss", issue.id)), ("issue.updated", render("iss", issue.id)),
    ]
    body = msgspec.json.decode(found[0]["payload"])
    assert set(body) == {"id", "type", "created_at", "workspace_id", "data"}
    assert body["id"] == found[0]["event_id"] and body["workspace_id"] == ws
    assert body["data"]["event"] == "IssueOpened" and body["data"]["title"] == "after"


async def test_an_endpoint_with_a_connector_gets_only_that_connectors_events(
        pool: AsyncConnectionPool[AsyncConn], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RULES, IssueIngestedForTest, always("issue.ingested"))
    ws = workspace()
    mine = endpoint(ws, ["issue.ingested"], connector="con_01KV1PX3NR96XJRGD48NNHH431")
    every = endpoint(ws, ["issue.ingested"])
    ingested = [IssueIngestedForTest(**envelope(meta(T1, ws), uuid.uuid4(), 1), connector_id=connector)
                for connector in ("con_01KV1PX3NR96XJRGD48NNHH431", "con_01KV1PX3NR96XJRGD48NNHH432")]

    await apply(pool, [mine, every, *ingested])
    found = await rows(pool, ws)

    by_endpoint = {(row["endpoint_id"], msgspec.json.decode(row["payload"])["data"]["connector_id"])
                   for row in found}
    assert by_endpoint == {
        (render("whk", mine.originator_id), "con_01KV1PX3NR96XJRGD48NNHH431"),
        (render("whk", every.originator_id), "con_01KV1PX3NR96XJRGD48NNHH431"),
        (render("whk", every.originator_id), "con_01KV1PX3NR96XJRGD48NNHH432"),
    }


async def test_other_workspaces_endpoints_never_get_an_event(pool: AsyncConnectionPool[AsyncConn]) -> None:
    ws, other = workspace(), workspace()
    theirs = endpoint(other, ["issue.created"])

    await apply(pool, [theirs, open_issue(issue_id=uuid.uuid4(), meta=meta(T1, ws), title="mine")])

    assert await rows(pool, ws) == [] and await rows(pool, other) == []


async def test_a_failing_endpoint_holds_its_queue_longer_each_time_and_is_disabled_after_24_hours(
        pool: AsyncConnectionPool[AsyncConn], settings: Settings) -> None:
    ws = workspace()
    down, up = endpoint(ws, ["issue.created"]), endpoint(ws, ["issue.created"])
    await apply(pool, [down, up, *(open_issue(issue_id=uuid.uuid4(), meta=meta(T1, ws), title=f"i{i}")
                                   for i in range(3))])
    queued = await rows(pool, ws)
    first, *held = [row for row in queued if row["endpoint_id"] == render("whk", down.originator_id)]
    healthy = [row for row in queued if row["endpoint_id"] == render("whk", up.originator_id)]
    disabled: list[tuple[str, str, datetime]] = []

    async def disable(workspace_id: str, endpoint_id: str, since: datetime) -> None:
        disabled.append((workspace_id, endpoint_id, since))

    now = T1 + timedelta(minutes=1)
    clock = [now]
    sender = Sender(msgspec.structs.replace(settings, webhooks_retry_base_s=5.0), pool, PostClient(),
                    box=lambda: pytest.fail("no secret is needed"), disable=disable, clock=lambda: clock[0])

    async def fail_then_succeed(at: datetime, attempt: int) -> dict[str, datetime]:
        clock[0] = at
        await sender.record([_outcome(first, attempt, at, 500), _outcome(healthy[0], attempt, at, 200)])
        return await next_attempts(pool, ws)

    after_one = await fail_then_succeed(now, 1)
    after_ten_minutes = await fail_then_succeed(now + timedelta(minutes=10), 2)
    after_23_hours = await fail_then_succeed(now + timedelta(hours=23), 3)
    assert disabled == []
    await fail_then_succeed(now + timedelta(hours=24), 4)

    assert after_one[first["id"]] == now + timedelta(seconds=5)  # its own backoff
    assert all(after_one[row["id"]] == now + timedelta(seconds=1) for row in held)
    assert all(after_ten_minutes[row["id"]] == now + timedelta(minutes=20) for row in held)
    assert all(after_23_hours[row["id"]] == now + timedelta(hours=24) for row in held)  # not past disabling
    assert all(after_one[row["id"]] == T1 for row in healthy[1:])  # a healthy endpoint's queue never waits
    assert disabled == [(ws, render("whk", down.originator_id), now)]


def _outcome(row: dict[str, Any], attempt: int, at: datetime, status: int) -> Outcome:
    claimed = Claimed(id=row["id"], workspace_id=row["workspace_id"], endpoint_id=row["endpoint_id"],
                      event_id=row["event_id"], kind="event", payload=bytes(row["payload"]), attempt=attempt,
                      first_attempt_at=at, url="https://hooks.example.com/x", secret_ciphertext="v1.x",
                      previous_secret_ciphertext=None, previous_valid_until=None)
    return Outcome(delivery=claimed, started_at=at, latency_ms=1.0, status_code=status,
                   error=None if status < 300 else f"HTTP {status}", response_body="")


async def next_attempts(pool: AsyncConnectionPool[AsyncConn], ws: str) -> dict[str, datetime]:
    async with writer_transaction(pool) as conn:
        cur = await conn.execute("SELECT id, next_attempt_at FROM webhook_deliveries WHERE workspace_id = %s", (ws,))
        return {str(row["id"]): row["next_attempt_at"] for row in await cur.fetchall()}
