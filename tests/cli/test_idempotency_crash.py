"""A retried idempotent request answers its first outcome, however the API died (issue #10, F9).

The API runs as a real process. Every request commits its events, then waits for the `issues` projection (which
is not running yet) to answer read-your-writes: all of them are between append and response when the API is
killed with SIGKILL. A new API process then gets every request again with the same Idempotency-Key: each answers
the issue its first attempt created (marked replayed), none is created twice, and a third attempt replays the
stored answer byte for byte.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator

import httpx
import msgspec
import psycopg
import pytest

from adapters.event_store import EventStore
from adapters.settings import Settings
from cli.embedded import free_port
from domain.identity.roles import Role
from domain.ids import render
from projections.registry import PROJECTIONS
from tests.e2e.conftest import Tenant
from tests.processes import serving, start, stop, wait_until
from tests.workers.pipeline import isolated

pytestmark = [pytest.mark.postgres, pytest.mark.nats]

REQUESTS = 40


@pytest.fixture
def own(settings: Settings) -> Iterator[Settings]:
    with isolated(msgspec.structs.replace(settings, port=free_port(0))) as own_settings:
        yield own_settings


def stored_issue_ids(settings: Settings) -> list[str]:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        rows = conn.execute(f'SELECT originator_id FROM "{settings.database_schema}".causeloop_events'
                            " WHERE topic = 'IssueOpened'").fetchall()
    return [str(row[0]) for row in rows]


async def post_all(base: str, headers: dict[str, str], keys: list[str]) -> list[httpx.Response | None]:
    """POST one issue per key concurrently; None where the connection died before an answer."""
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        async def one(key: str) -> httpx.Response | None:
            try:
                return await client.post("/v1/issues", json={"title": f"crash {key}"},
                                          headers={**headers, "Idempotency-Key": key})
            except httpx.HTTPError:
                return None
        return list(await asyncio.gather(*(one(key) for key in keys)))


def test_every_retried_request_answers_the_first_outcome_after_a_kill_between_append_and_response(
        own: Settings) -> None:
    base = f"http://127.0.0.1:{own.port}"
    keys = [f"crash-{uuid.uuid4().hex}" for _ in range(REQUESTS)]
    all_but_issues = [name for name in PROJECTIONS if name != "issues"]
    workers = [start(own, "relay"), start(own, "projector", *all_but_issues)]
    api = start(own, "api", READ_YOUR_WRITES_TIMEOUT_S="120")
    store = EventStore(own, pool_size=1)
    try:
        headers = Tenant(own, store).headers(Role.ANALYST)
        wait_until(lambda: serving(base), "the API to serve")

        async def crash() -> list[httpx.Response | None]:
            sending = asyncio.create_task(post_all(base, headers, keys))
            await asyncio.to_thread(wait_until, lambda: len(stored_issue_ids(own)) == REQUESTS, "every append")
            api.send_signal(signal.SIGKILL)
            return await sending

        first = asyncio.run(crash())
        assert first == [None] * REQUESTS  # none answered: each died between its append and its response
        created = set(stored_issue_ids(own))

        api = start(own, "api")
        workers.append(start(own, "projector", "issues"))
        wait_until(lambda: serving(base), "the new API to serve")
        retried = asyncio.run(post_all(base, headers, keys))
        again = asyncio.run(post_all(base, headers, keys))

        assert all(r is not None and r.status_code == 201 for r in retried), [r and r.text for r in retried]
        answered = [r.json() for r in retried if r is not None]
        assert [issue["title"] for issue in answered] == [f"crash {key}" for key in keys]
        assert {issue["id"] for issue in answered} == {render("iss", uuid.UUID(stream)) for stream in created}
        assert all(r is not None and r.headers.get("idempotency-replayed") == "true" for r in retried)
        assert [r.content if r else None for r in again] == [r.content if r else None for r in retried]
        assert len(stored_issue_ids(own)) == REQUESTS and set(stored_issue_ids(own)) == created
        listed = httpx.get(f"{base}/v1/issues", params={"limit": 100}, headers=headers, timeout=30).json()
        assert sorted(issue["id"] for issue in listed["data"]) == sorted(issue["id"] for issue in answered)
    finally:
        store.close()
        for process in [api, *workers]:
            stop(process)
