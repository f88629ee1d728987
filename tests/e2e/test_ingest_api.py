"""The ingestion API through the public HTTP API, on real Postgres and NATS with the relay and projector running."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from api.app import create_app
from api.core.consistency import POSITION_HEADER
from domain.identity.roles import Role
from projections.position_waiter import PositionWaiter
from tests import ingest_payloads as samples
from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def readable(settings: Settings) -> AsyncIterator[PositionWaiter]:
    """Waits on the `issues` read model: a batch answers once durable, before the issues are readable."""
    waiter = PositionWaiter(settings)
    await waiter.start()
    yield waiter
    await waiter.stop()


WAITER: list[PositionWaiter] = []


async def push(api: Client, tenant: Tenant, path: str, body: Any, expect: int = 202) -> dict[str, Any]:
    """POST a push; then wait (on its X-Causeloop-Position) until its issues are readable."""
    response = await api.post(f"/v1/ingest/{path}", content=json.dumps(body).encode(),  # \uXXXX escapes
                              headers={**tenant.headers(), "Content-Type": "application/json"})
    assert response.status_code == expect, response.text
    for waiter in WAITER:
        assert await waiter.wait("issues", int(response.headers[POSITION_HEADER]), 10.0)
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture(autouse=True)
def _readable(readable: PositionWaiter) -> Iterator[None]:
    WAITER.append(readable)
    yield
    WAITER.clear()


async def issue(api: Client, tenant: Tenant, issue_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/issues/{issue_id}", headers=tenant.headers())
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def status(api: Client, tenant: Tenant, job_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/ingest/status/{job_id}", headers=tenant.headers())
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def stored_topics(settings: Settings, tenant: Tenant) -> list[tuple[str, dict[str, Any]]]:
    """The tenant's stored events (topic, data), in store order. Decoded here, not cast to jsonb in SQL: other
    tests' hostile inputs (a NUL in a header) are stored too, and jsonb refuses `\u0000`."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        rows = conn.execute("SELECT topic, state FROM causeloop_events WHERE position(%s::bytea IN state) > 0 "
                            "ORDER BY notification_id", (tenant.workspace_id.encode(),)).fetchall()
    decoded = [(str(topic), json.loads(bytes(state))) for topic, state in rows]
    return [(topic, data) for topic, data in decoded if data.get("workspace_id") == tenant.workspace_id]


def stored_issue_streams(settings: Settings, tenant: Tenant) -> int:
    """Issue streams in the event store for the tenant (the source of truth, not a read model)."""
    return sum(1 for topic, _ in stored_topics(settings, tenant) if topic == "IssueOpened")


def nested(depth: int) -> Any:
    return [nested(depth - 1)] if depth else 1


async def test_a_raw_signal_becomes_an_issue_at_once(api: Client, tenant: Tenant) -> None:
    answer = await push(api, tenant, "events", {"source": "pagerduty", "external_id": "PD-1",
                                                "title": "Checkout 502", "severity": "p1",
                                                "external_url": "https://example.pagerduty.com/incidents/PD-1",
                                                "metadata": {"service": "checkout"}})

    assert answer["accepted"] == 1 and answer["rejected"] == []
    assert answer["issue_id"].startswith("iss_") and answer["job_id"].startswith("ing_job_")
    created = await issue(api, tenant, answer["issue_id"])
    assert (created["title"], created["severity"], created["source"], created["external_id"], created["body"]) == \
        ("Checkout 502", "critical", "pagerduty", "PD-1", "")
    assert created["metadata"] == {"service": "checkout"}


async def test_defaults_title_fallback_and_unknown_source(api: Client, tenant: Tenant) -> None:
    answer = await push(api, tenant, "events", {"source": "my-homegrown-tool", "external_id": "X-9"})

    created = await issue(api, tenant, answer["issue_id"])
    assert (created["title"], created["source"], created["severity"]) == ("X-9", "custom_api", "medium")


async def test_resubmitting_updates_the_same_issue_and_an_identical_one_appends_nothing(
        api: Client, tenant: Tenant) -> None:
    signal = {"source": "sentry", "external_id": "S-1", "title": "KeyError in billing", "severity": "p3"}
    first = await push(api, tenant, "events", signal)
    second = await push(api, tenant, "events", {**signal, "severity": "p2", "body": "seen again"})
    third = await push(api, tenant, "events", {**signal, "severity": "p2"})

    assert first["issue_id"] == second["issue_id"] == third["issue_id"]
    assert len({first["job_id"], second["job_id"], third["job_id"]}) == 3
    updated = await issue(api, tenant, first["issue_id"])
    assert (updated["severity"], updated["body"], updated["version"]) == ("high", "seen again", 2)
    jobs = [await status(api, tenant, answer["job_id"]) for answer in (first, second, third)]
    assert [(job["created"], job["updated"], job["unchanged"]) for job in jobs] == [(1, 0, 0), (0, 1, 0), (0, 0, 1)]


async def test_a_signal_that_changes_its_issue_records_its_job_on_the_issue_event(
        api: Client, tenant: Tenant, settings: Settings) -> None:
    signal = {"source": "sentry", "external_id": "S-9", "title": "KeyError in billing"}
    opened = await push(api, tenant, "events", signal)
    edited = await push(api, tenant, "custom_api/issues", {**signal, "severity": "p1"})
    unchanged = await push(api, tenant, "events", {**signal, "severity": "p1"})

    stored = [(topic, data.get("ingested_by")) for topic, data in stored_topics(settings, tenant)
              if topic.startswith(("Issue", "Ingestion"))]
    assert [topic for topic, _ in stored] == ["IssueOpened", "IssueDetailsEdited", "IngestionJobCompleted"]
    assert stored[0][1] == {"job_id": opened["job_id"], "kind": "event", "record_source": "sentry",
                            "external_id": "S-9", "source": None, "connector_id": None}
    assert stored[1][1] is not None and stored[1][1]["job_id"] == edited["job_id"]
    assert stored[1][1]["kind"] == "source" and stored[1][1]["source"] == "custom_api"
    jobs = [await status(api, tenant, answer["job_id"]) for answer in (opened, edited, unchanged)]  # no wait
    assert [(job["accepted"], job["created"], job["updated"], job["unchanged"], job["issue_ids"]) for job in jobs] == [
        (1, 1, 0, 0, [opened["issue_id"]]), (1, 0, 1, 0, [opened["issue_id"]]), (1, 0, 0, 1, [opened["issue_id"]])]


async def test_a_signal_resent_with_its_idempotency_key_answers_the_same_job(api: Client, tenant: Tenant) -> None:
    headers = {**tenant.headers(), "Idempotency-Key": "signal-once"}
    first = await api.post("/v1/ingest/events", json={"external_id": "I-1", "title": "Once"}, headers=headers)
    again = await api.post("/v1/ingest/events", json={"external_id": "I-1", "title": "Once"}, headers=headers)

    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert again.json() == first.json()
    assert (await status(api, tenant, first.json()["job_id"]))["issue_ids"] == [first.json()["issue_id"]]


async def test_a_batch_rejects_bad_records_one_by_one_and_lists_the_rest_in_order(
        api: Client, tenant: Tenant) -> None:
    records: list[Any] = [
        {"external_id": "B-1", "source": "jira", "title": "Disk full on db-3", "severity": "p2", "team": "infra"},
        {"external_id": "B-2", "title": "x" * 301},
        {"external_id": 17, "title": "wrong type"},
        {"title": "no key at all", "severity": "p4", "source_created_at": "2026-03-01T12:00:00Z"},
        "not an object",
        {"external_id": "B-3", "severity": "urgent"},
        {"external_id": "B-4", "titel": "typo"},
        {"external_id": "B-5", "metadata": [1, 2]},
        {"external_id": "B-6", "source_created_at": "yesterday"},
        {"external_id": "B-7", "title": "nul \u0000 inside"},
        {"external_id": "B-8", "a key with spaces\u0000": "not repeated in the reason"},
        {"external_id": "B-9", "metadata": {"deep": nested(20)}},
    ]

    answer = await push(api, tenant, "batch", {"records": records})

    reasons = {entry["index"]: entry["reason"] for entry in answer["rejected"]}
    assert sorted(reasons) == [1, 2, 4, 5, 6, 7, 8, 9, 10, 11]
    assert reasons[9] == "title: must not contain NUL or lone surrogates"
    assert reasons[10] == "record: unknown field" and reasons[11] == "metadata: nested deeper than 16 levels"
    assert reasons[1] == "title: must be at most 300 characters"
    assert reasons[2] == "external_id: must be a string"
    assert reasons[4] == "record: must be a JSON object"
    assert reasons[5].startswith("severity:") and reasons[6] == "titel: unknown field"
    assert answer["accepted"] == 2 and len(answer["issue_ids"]) == 2
    assert answer["status"] == "completed"
    first, keyless = [await issue(api, tenant, issue_id) for issue_id in answer["issue_ids"]]
    assert (first["title"], first["severity"], first["team"], first["source"]) == \
        ("Disk full on db-3", "high", "infra", "jira")
    assert (keyless["title"], keyless["severity"], keyless["external_id"]) == ("no key at all", "low", None)
    job = await status(api, tenant, answer["job_id"])
    assert (job["status"], job["accepted"], job["issue_ids"], job["rejected"], job["received"]) == \
        ("completed", 2, answer["issue_ids"], answer["rejected"], len(records))


async def test_a_key_repeated_in_a_batch_and_across_batches_is_one_issue(api: Client, tenant: Tenant,
                                                                         settings: Settings) -> None:
    first = await push(api, tenant, "batch", {"records": [
        {"source": "github", "external_id": "o/r#1", "title": "Flaky test", "severity": "p3"},
        {"source": "github", "external_id": "o/r#2", "title": "Other"},
        {"source": "github", "external_id": "o/r#1", "title": "Flaky test", "severity": "p1"},
    ]})
    second = await push(api, tenant, "batch", {"records": [
        {"source": "github", "external_id": "o/r#1", "title": "Flaky test", "severity": "p1"},
        {"source": "github", "external_id": "o/r#2", "title": "Other, renamed"},
    ]})

    assert first["issue_ids"][0] == first["issue_ids"][2] == second["issue_ids"][0]
    assert first["issue_ids"][1] == second["issue_ids"][1]
    job = await status(api, tenant, second["job_id"])
    assert (job["created"], job["updated"], job["unchanged"]) == (0, 1, 1)
    assert stored_issue_streams(settings, tenant) == 2
    repeated = await issue(api, tenant, first["issue_ids"][0])
    assert (repeated["severity"], repeated["version"]) == ("critical", 2)
    assert (await issue(api, tenant, first["issue_ids"][1]))["title"] == "Other, renamed"


async def test_concurrent_duplicate_submissions_from_two_api_processes_create_one_issue(
        api: Client, tenant: Tenant, settings: Settings) -> None:
    """Two apps (two API processes' worth of runners and group committers) race on the same keys."""
    async with AsyncTestClient(create_app(settings, configure_logging=False)) as other:
        batch = {"records": [{"source": "datadog", "external_id": f"race-{n}", "title": f"Alert {n}"}
                             for n in range(50)]}
        answers = await asyncio.gather(*(client.post("/v1/ingest/batch", json=batch, headers=tenant.headers())
                                         for client in (api, other, api, other)),
                                       *(client.post("/v1/ingest/events", headers=tenant.headers(),
                                                     json={"source": "datadog", "external_id": "race-0",
                                                           "title": "Alert 0"}) for client in (api, other)))

    assert [response.status_code for response in answers] == [202] * 6
    ids = {tuple(response.json()["issue_ids"]) for response in answers[:4]}
    assert len(ids) == 1
    assert stored_issue_streams(settings, tenant) == 50
    assert {response.json()["issue_id"] for response in answers[4:]} == {next(iter(ids))[0]}


async def test_malformed_json_oversized_batches_and_bodies_are_clean_4xx(api: Client, tenant: Tenant,
                                                                         settings: Settings) -> None:
    headers = {**tenant.headers(), "Content-Type": "application/json"}
    malformed = await api.post("/v1/ingest/batch", content=b'{"records": [{"title": "x"', headers=headers)
    too_many = await api.post("/v1/ingest/batch", json={"records": [{"title": "t"}] * 501},
                              headers=tenant.headers())
    empty = await api.post("/v1/ingest/batch", json={"records": []}, headers=tenant.headers())
    too_long_title = await api.post("/v1/ingest/events", json={"title": "x" * 301}, headers=tenant.headers())
    wrong_type = await api.post("/v1/ingest/events", json={"title": 5}, headers=tenant.headers())
    huge = await api.post("/v1/ingest/events", headers=headers,
                          content=b'{"title": "' + b"x" * settings.max_body_bytes + b'"}')

    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "validation_error")
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (400, "validation_error")
    assert "records" in too_many.text
    assert empty.status_code == 400
    assert too_long_title.status_code == 400
    assert too_long_title.json()["error"]["details"] == {"field": "title",
                                                         "reason": "must be at most 300 characters"}
    assert (wrong_type.status_code, wrong_type.json()["error"]["code"]) == (400, "validation_error")
    assert (huge.status_code, huge.json()["error"]["code"]) == (413, "payload_too_large")


async def test_ingestion_needs_the_ingest_write_scope(api: Client, tenant: Tenant) -> None:
    viewer = await api.post("/v1/ingest/events", json={"title": "t"}, headers=tenant.headers(Role.VIEWER))
    anonymous = await api.post("/v1/ingest/batch", json={"records": [{"title": "t"}]})

    assert (viewer.status_code, viewer.json()["error"]["details"]) == (403, {"required_scope": "ingest:write"})
    assert anonymous.status_code == 401


async def test_a_job_of_another_workspace_or_a_malformed_id_is_not_found(api: Client, tenant: Tenant,
                                                                         other_tenant: Tenant) -> None:
    answer = await push(api, tenant, "events", {"title": "mine"})

    theirs = await api.get(f"/v1/ingest/status/{answer['job_id']}", headers=other_tenant.headers())
    malformed = await api.get("/v1/ingest/status/ing_job_nope", headers=tenant.headers())
    wrong_prefix = await api.get(f"/v1/ingest/status/{answer['issue_id']}", headers=tenant.headers())

    assert [r.status_code for r in (theirs, malformed, wrong_prefix)] == [404, 404, 404]


@pytest.mark.parametrize(("source", "payload", "expected"), [
    ("jira", samples.JIRA_WEBHOOK, ("OPS-17", "Payment gateway timeouts in eu-west-1", "high", "payments")),
    ("pagerduty", samples.PAGERDUTY_INCIDENT, ("PT4KHLK", "The server is on fire.", "high", "Engineering")),
    ("github", samples.GITHUB_WEBHOOK, ("octocat/Hello-World#1347", "Found a bug", "critical", None)),
    ("sentry", samples.SENTRY_ISSUE, ("1", "This is an example Python exception", "high", None)),
    ("datadog", samples.DATADOG_MONITOR, ("6991024734765427210", "[Triggered] High error rate on checkout",
                                          "critical", "payments")),
    ("custom_api", {"external_id": "C-1", "title": "Canonical"}, ("C-1", "Canonical", "medium", None)),
])
async def test_provider_payloads_are_normalized_to_the_canonical_issue(
        api: Client, tenant: Tenant, source: str, payload: dict[str, Any],
        expected: tuple[str, str, str, str | None]) -> None:
    answer = await push(api, tenant, f"{source}/issues", payload)
    again = await push(api, tenant, f"{source}/issues", payload)

    created = await issue(api, tenant, answer["issue_id"])
    assert (created["external_id"], created["title"], created["severity"], created["team"]) == expected
    assert created["source"] == source and again["issue_id"] == answer["issue_id"]
    job = await status(api, tenant, again["job_id"])
    assert (job["kind"], job["source"], job["unchanged"]) == ("source", source, 1)


async def test_an_unknown_source_or_an_unusable_payload_is_a_clean_4xx(api: Client, tenant: Tenant) -> None:
    unknown = await api.post("/v1/ingest/nagios/issues", json={"title": "x"}, headers=tenant.headers())
    unusable = await api.post("/v1/ingest/jira/issues", json={"issue": {"key": "A-1"}}, headers=tenant.headers())

    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    assert (unusable.status_code, unusable.json()["error"]["details"]) == \
        (400, {"field": "fields", "reason": "must be a JSON object"})
