"""List envelopes, signed keyset cursors, limit and sort validation."""

from __future__ import annotations

import base64
import json

import pytest

from api.core.errors import ApiError
from api.core.pagination import decode_cursor, encode_cursor, parse_sort
from tests.api.conftest import AppClient

pytestmark = pytest.mark.postgres

KEY = "cursor-signing-key"


async def test_pages_walk_the_whole_list_newest_first(client: AppClient, auth: dict[str, str]) -> None:
    seen: list[int] = []
    pages = []
    cursor: str | None = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/v1/items", params=params, headers=auth)).json()
        pages.append(body["page"])
        seen += [item["n"] for item in body["data"]]
        cursor = body["page"]["next_cursor"]
        if cursor is None:
            break

    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert [p["has_more"] for p in pages] == [True, True, False]
    assert {p["total"] for p in pages} == {7}


async def test_ascending_sort_pages_oldest_first(client: AppClient, auth: dict[str, str]) -> None:
    first = (await client.get("/v1/items", params={"limit": "4", "sort": "n"}, headers=auth)).json()
    second = (await client.get("/v1/items", params={"limit": "4", "sort": "n", "cursor": first["page"]["next_cursor"]},
                               headers=auth)).json()

    assert [i["n"] for i in first["data"]] == [1, 2, 3, 4]
    assert [i["n"] for i in second["data"]] == [5, 6, 7]
    assert second["page"] == {"next_cursor": None, "has_more": False, "total": 7}


async def test_the_default_limit_is_25(client: AppClient, auth: dict[str, str]) -> None:
    body = (await client.get("/v1/items", headers=auth)).json()

    assert len(body["data"]) == 7
    assert body["page"]["next_cursor"] is None


async def first_cursor(client: AppClient, auth: dict[str, str]) -> str:
    cursor: str = (await client.get("/v1/items", params={"limit": "2"}, headers=auth)).json()["page"]["next_cursor"]
    return cursor


def reencoded(cursor: str, **changes: object) -> str:
    body, _, signature = cursor.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


@pytest.mark.parametrize("tamper", [
    lambda c: reencoded(c, v=100),
    lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),
    lambda c: c.partition(".")[0],
    lambda c: c + "!!",
    lambda c: encode_cursor("someone-elses-key", {"s": "-n", "v": 3}),
    lambda c: base64.urlsafe_b64encode(b'{"offset": 25}').decode(),
    lambda c: "eyJvZmZzZXQiOiAyNX0",
])
async def test_a_tampered_cursor_is_a_400(client: AppClient, auth: dict[str, str], tamper: object) -> None:
    cursor = await first_cursor(client, auth)
    assert callable(tamper)

    response = await client.get("/v1/items", params={"limit": "2", "cursor": tamper(cursor)}, headers=auth)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"] == "malformed cursor token"
    assert error["details"] == {"field": "cursor", "reason": "malformed cursor token"}


async def test_a_cursor_from_another_sort_is_a_400(client: AppClient, auth: dict[str, str]) -> None:
    cursor = await first_cursor(client, auth)

    response = await client.get("/v1/items", params={"sort": "n", "cursor": cursor}, headers=auth)

    assert response.json()["error"]["message"] == "malformed cursor token"


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "2.5"])
async def test_a_limit_outside_1_to_100_is_a_400(client: AppClient, auth: dict[str, str], limit: str) -> None:
    response = await client.get("/v1/items", params={"limit": limit}, headers=auth)

    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "limit"


@pytest.mark.parametrize("limit", ["1", "100"])
async def test_the_limit_bounds_are_accepted(client: AppClient, auth: dict[str, str], limit: str) -> None:
    assert (await client.get("/v1/items", params={"limit": limit}, headers=auth)).status_code == 200


async def test_an_unknown_sort_field_is_a_400(client: AppClient, auth: dict[str, str]) -> None:
    response = await client.get("/v1/items", params={"sort": "-colour"}, headers=auth)

    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "sort"


def test_a_cursor_round_trips_its_payload() -> None:
    payload = {"s": "-created_at", "v": "2026-01-15T09:00:00Z", "i": "iss_01"}

    assert decode_cursor(KEY, encode_cursor(KEY, payload), "-created_at") == payload


def test_a_cursor_is_url_safe() -> None:
    cursor = encode_cursor(KEY, {"s": "n", "v": "??>>//++"})

    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_cursor_signed_with_another_key_is_rejected() -> None:
    with pytest.raises(ApiError) as raised:
        decode_cursor(KEY, encode_cursor("other", {"s": "n"}), "n")

    assert (raised.value.status, raised.value.message) == (400, "malformed cursor token")


@pytest.mark.parametrize(("value", "expected"), [
    (None, ("created_at", True)), ("", ("created_at", True)), ("created_at", ("created_at", False)),
    ("-risk_score", ("risk_score", True)),
])
def test_parse_sort(value: str | None, expected: tuple[str, bool]) -> None:
    assert parse_sort(value, {"created_at", "risk_score"}, "-created_at") == expected


@pytest.mark.parametrize("value", ["colour", "--created_at", "-"])
def test_parse_sort_rejects_unknown_fields(value: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_sort(value, {"created_at"}, "-created_at")

    assert raised.value.details == {"field": "sort", "reason": "must be one of created_at, -created_at"}
