"""Idempotency-Key: replay of 2xx, 422 on a changed body, 409 while in flight, scoped per principal and path."""

from __future__ import annotations

import threading
import uuid

import httpx
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient, TestClient

from adapters.settings import Settings
from tests.api.conftest import AppClient, Calls, bearer, build_app, token_for

pytestmark = pytest.mark.postgres


def calls(client: AsyncTestClient[Litestar] | TestClient[Litestar]) -> Calls:
    counted: Calls = client.app.state.calls
    return counted


@pytest.fixture
def key() -> str:
    return str(uuid.uuid4())


async def post(client: AppClient, auth: dict[str, str], key: str | None, title: str = "a",
               path: str = "/v1/things") -> httpx.Response:
    headers = {**auth, **({"Idempotency-Key": key} if key is not None else {})}
    return await client.post(path, json={"title": title}, headers=headers)


async def test_a_repeat_replays_the_first_answer_without_running_the_handler(
        client: AppClient, auth: dict[str, str], key: str) -> None:
    first = await post(client, auth, key)
    again = await post(client, auth, key)

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotency-replayed"] == "true"
    assert "idempotency-replayed" not in first.headers
    assert (again.headers["location"], again.headers["etag"]) == (first.headers["location"], first.headers["etag"])
    assert "x-other" not in again.headers
    assert calls(client).by_path["/v1/things"] == 1


async def test_a_replay_still_gets_its_own_request_id(client: AppClient, auth: dict[str, str], key: str) -> None:
    first = await post(client, auth, key)
    again = await post(client, auth, key)

    assert again.headers["x-request-id"] != first.headers["x-request-id"]


async def test_the_same_key_with_another_body_is_a_422(client: AppClient, auth: dict[str, str], key: str) -> None:
    await post(client, auth, key, title="a")

    response = await post(client, auth, key, title="b")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert calls(client).by_path["/v1/things"] == 1


@pytest.mark.parametrize(("title", "status"), [("illegal", 422), ("missing", 404), ("boom", 500)])
async def test_an_error_is_not_kept_so_a_retry_runs_again(client: AppClient, auth: dict[str, str], key: str,
                                                          title: str, status: int) -> None:
    first = await post(client, auth, key, title=title)
    again = await post(client, auth, key, title=title)

    assert first.status_code == again.status_code == status
    assert "idempotency-replayed" not in again.headers
    assert calls(client).by_path["/v1/things"] == 2


async def test_a_rejected_body_does_not_use_up_the_key(client: AppClient, auth: dict[str, str], key: str) -> None:
    invalid = await client.post("/v1/things", json={"title": 7}, headers={**auth, "Idempotency-Key": key})
    valid = await client.post("/v1/things", json={"title": 7 * "x"}, headers={**auth, "Idempotency-Key": key})

    assert (invalid.status_code, valid.status_code) == (400, 201)


async def test_another_path_is_another_entry(client: AppClient, auth: dict[str, str], key: str) -> None:
    things = await post(client, auth, key, path="/v1/things")
    gadgets = await post(client, auth, key, path="/v1/gadgets")

    assert things.status_code == gadgets.status_code == 201
    assert "idempotency-replayed" not in gadgets.headers
    assert calls(client).by_path == {"/v1/things": 1, "/v1/gadgets": 1}


async def test_another_principal_is_another_entry(client: AppClient, settings: Settings, key: str) -> None:
    workspace = f"ws_{uuid.uuid4().hex[:8]}"
    alice = bearer(token_for(settings, workspace_id=workspace, subject="usr_alice"))
    bob = bearer(token_for(settings, workspace_id=workspace, subject="usr_bob"))

    await post(client, alice, key)
    response = await post(client, bob, key)

    assert "idempotency-replayed" not in response.headers
    assert calls(client).by_path["/v1/things"] == 2


async def test_the_same_principal_in_another_workspace_is_another_entry(client: AppClient, settings: Settings,
                                                                       key: str) -> None:
    await post(client, bearer(token_for(settings, subject="usr_carol")), key)
    response = await post(client, bearer(token_for(settings, subject="usr_carol")), key)

    assert "idempotency-replayed" not in response.headers


async def test_a_key_older_than_24_hours_is_forgotten(client: AppClient, auth: dict[str, str], key: str,
                                                       settings: Settings) -> None:
    await post(client, auth, key)
    with psycopg.connect(settings.database_url, autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = %s", (key,))

    response = await post(client, auth, key, title="a different body is fine now")

    assert response.status_code == 201
    assert "idempotency-replayed" not in response.headers
    assert calls(client).by_path["/v1/things"] == 2


@pytest.mark.parametrize("bad_key", ["", "   ", "k" * 256])
async def test_an_empty_or_overlong_key_is_a_400(client: AppClient, auth: dict[str, str], bad_key: str) -> None:
    response = await post(client, auth, bad_key)

    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "Idempotency-Key"
    assert calls(client).by_path["/v1/things"] == 0


async def test_a_255_character_key_is_accepted(client: AppClient, auth: dict[str, str]) -> None:
    assert (await post(client, auth, "k" * 255)).status_code == 201


async def test_get_ignores_the_key(client: AppClient, auth: dict[str, str], key: str) -> None:
    await client.get("/v1/items", headers={**auth, "Idempotency-Key": key})
    again = await client.get("/v1/items", headers={**auth, "Idempotency-Key": key})

    assert again.status_code == 200
    assert "idempotency-replayed" not in again.headers


async def test_without_a_token_auth_answers_first(client: AppClient, key: str) -> None:
    response = await post(client, {}, key)

    assert response.status_code == 401


async def test_public_routes_are_not_deduplicated(client: AppClient, key: str) -> None:
    first = await client.post("/v1/public/echo", json={"title": "a"}, headers={"Idempotency-Key": key})
    again = await client.post("/v1/public/echo", json={"title": "a"}, headers={"Idempotency-Key": key})

    assert first.status_code == again.status_code == 200
    assert "idempotency-replayed" not in again.headers


def test_the_same_key_while_the_first_is_in_flight_is_a_409(settings: Settings, key: str) -> None:
    auth = {**bearer(token_for(settings)), "Idempotency-Key": key}
    with TestClient(app=build_app(settings)) as client:
        gates = calls(client)
        first: list[httpx.Response] = []
        slow = threading.Thread(target=lambda: first.append(client.post("/v1/things", json={"title": "slow"},
                                                                        headers=auth)))
        slow.start()
        assert gates.entered.wait(10)

        while_running = client.post("/v1/things", json={"title": "slow"}, headers=auth)
        gates.release.set()
        slow.join(10)
        afterwards = client.post("/v1/things", json={"title": "slow"}, headers=auth)

    assert while_running.status_code == 409
    assert while_running.json()["error"]["code"] == "idempotency_in_progress"
    assert first[0].status_code == 201
    assert afterwards.headers["idempotency-replayed"] == "true"
    assert afterwards.content == first[0].content
    assert gates.by_path["/v1/things"] == 1
