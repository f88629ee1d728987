"""Kill the ingestion path mid-batch: every record that got a 2xx is there exactly once (issue #12).

The API runs as a real process, with the relay and projector. Clients push batches of fresh keys, some with a
key repeated inside the batch, until several have been answered, and the API is killed with SIGKILL while more
are in flight. Then: each answered record's issue is in the event store exactly once, under the issue id the
answer named. A new API process gets every batch again (answered or not, as a client that did not hear back
would resend): nothing is created twice, the answered records come back `unchanged`, and the issues read model
holds exactly one issue per key.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import psycopg
import pytest

from adapters.event_store import EventStore
from adapters.settings import Settings
from cli.embedded import free_port
from domain.identity.roles import Role
from domain.ids import render
from tests.e2e.conftest import Tenant
from tests.processes import serving, start, stop, wait_until
from tests.workers.pipeline import isolated

pytestmark = [pytest.mark.postgres, pytest.mark.nats]

CLIENTS = 4
BATCHES = 10
RECORDS = 100


@pytest.fixture
def own(settings: Settings) -> Iterator[Settings]:
    with isolated(msgspec.structs.replace(settings, port=free_port(0))) as own_settings:
        yield own_settings


def stored_keys(settings: Settings) -> Counter[tuple[str, str]]:
    """(external_id, issue stream as a public id) of every IssueOpened stored: the source of truth."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        rows = conn.execute(f'SELECT originator_id, convert_from(state, \'UTF8\')::jsonb->>\'external_id\' '
                            f'FROM "{settings.database_schema}".causeloop_events WHERE topic = \'IssueOpened\''
                            ).fetchall()
    return Counter((str(row[1]), render("iss", row[0])) for row in rows)


def listed_total(base: str, headers: dict[str, str]) -> int:
    page = httpx.get(f"{base}/v1/issues", params={"limit": 1}, headers=headers, timeout=30).json()["page"]
    return int(page["total"])


def batch(client: int, number: int) -> list[dict[str, Any]]:
    records = [{"source": "custom_api", "external_id": f"c{client}-b{number}-r{n}", "title": f"crash {n}",
                "severity": "p2"} for n in range(RECORDS)]
    records[-1] = {**records[0], "body": "again"}  # a key repeated within the batch: one issue, updated
    return records


async def push_all(base: str, headers: dict[str, str], answered: dict[tuple[int, int], dict[str, Any]],
                   stop_after: int | None) -> None:
    """Each client sends its batches in turn; None-answers (a dead connection) are simply not recorded."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        async def one_client(number: int) -> None:
            for n in range(BATCHES):
                try:
                    response = await client.post("/v1/ingest/batch", json={"records": batch(number, n)},
                                                 headers=headers)
                except httpx.HTTPError:
                    return
                assert response.status_code == 202, response.text
                answered[(number, n)] = response.json()
                if stop_after is not None and len(answered) >= stop_after:
                    await asyncio.sleep(0)  # let the others send theirs: the kill lands mid-flight
        await asyncio.gather(*(one_client(number) for number in range(CLIENTS)))


def test_every_answered_record_is_stored_exactly_once_after_a_kill_mid_batch(own: Settings) -> None:
    base = f"http://127.0.0.1:{own.port}"
    workers = [start(own, "relay"), start(own, "projector")]
    api = start(own, "api")
    store = EventStore(own, pool_size=1)
    try:
        headers = Tenant(own, store).headers(Role.ANALYST)
        wait_until(lambda: serving(base), "the API to serve")
        answered: dict[tuple[int, int], dict[str, Any]] = {}

        async def crash() -> None:
            sending = asyncio.create_task(push_all(base, headers, answered, stop_after=6))
            await asyncio.to_thread(wait_until, lambda: len(answered) >= 6, "six answered batches")
            api.send_signal(signal.SIGKILL)
            await sending

        asyncio.run(crash())
        assert 6 <= len(answered) < CLIENTS * BATCHES, "the kill must land while batches are in flight"
        stored = stored_keys(own)
        assert max(stored.values()) == 1
        by_key = {key: issue_id for key, issue_id in stored}
        for (client, number), answer in answered.items():
            keys = [record["external_id"] for record in batch(client, number)]
            assert answer["accepted"] == RECORDS and answer["rejected"] == []
            assert answer["issue_ids"] == [by_key[key] for key in keys]

        api = start(own, "api")
        wait_until(lambda: serving(base), "the new API to serve")
        resent: dict[tuple[int, int], dict[str, Any]] = {}
        asyncio.run(push_all(base, headers, resent, stop_after=None))

        assert len(resent) == CLIENTS * BATCHES
        stored = stored_keys(own)
        assert max(stored.values()) == 1 and len(stored) == CLIENTS * BATCHES * (RECORDS - 1)
        for key, answer in answered.items():
            assert resent[key]["issue_ids"] == answer["issue_ids"]
            job = httpx.get(f"{base}/v1/ingest/status/{resent[key]['job_id']}", headers=headers, timeout=30).json()
            assert (job["created"], job["updated"], job["unchanged"]) == (0, 0, RECORDS)
        wait_until(lambda: listed_total(base, headers) == len(stored), "the issues read model to have every issue")
    finally:
        store.close()
        for process in [api, *workers]:
            stop(process)
