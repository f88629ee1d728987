"""Every error answers in the envelope, with trace_id equal to the X-Request-Id header."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.settings import Settings
from tests.api.conftest import READ, AppClient, bearer, build_app, token_for

pytestmark = pytest.mark.postgres


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "trace_id", "details"}
    assert error["code"] == code
    assert error["message"]
    assert error["trace_id"] == response.headers["x-request-id"]
    assert isinstance(error["details"], dict | list)
    return dict(error)


async def test_a_well_formed_incoming_request_id_is_echoed(client: AppClient) -> None:
    response = await client.get("/health", headers={"X-Request-Id": "req-1.abc_DEF"})

    assert response.headers["x-request-id"] == "req-1.abc_DEF"


@pytest.mark.parametrize("incoming", ["has spaces", "x" * 129, "semi;colon", ""])
async def test_a_malformed_incoming_request_id_is_replaced(client: AppClient, incoming: str) -> None:
    response = await client.get("/health", headers={"X-Request-Id": incoming})

    assert response.headers["x-request-id"] != incoming
    assert len(response.headers["x-request-id"]) == 36


async def test_the_trace_id_is_the_callers_request_id(client: AppClient) -> None:
    response = await client.get("/v1/nowhere", headers={"X-Request-Id": "trace-me"})

    assert assert_envelope(response, 404, "not_found")["trace_id"] == "trace-me"


async def test_400_for_a_body_of_the_wrong_shape(client: AppClient, auth: dict[str, str]) -> None:
    response = await client.post("/v1/things", json={"title": 5}, headers=auth)

    assert assert_envelope(response, 400, "validation_error")["details"]["field"] == "title"


async def test_401_without_a_token(client: AppClient) -> None:
    response = await client.post("/v1/things", json={"title": "a"})

    assert_envelope(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_403_without_the_scope(client: AppClient, settings: Settings) -> None:
    response = await client.post("/v1/things", json={"title": "a"},
                                 headers=bearer(token_for(settings, scopes=frozenset({READ}))))

    assert assert_envelope(response, 403, "forbidden")["details"] == {"required_scope": "issues:write"}


async def test_404_for_an_unknown_route(client: AppClient) -> None:
    assert_envelope(await client.get("/v1/no/such/route"), 404, "not_found")


async def test_404_from_the_not_found_helper(client: AppClient, auth: dict[str, str]) -> None:
    error = assert_envelope(await client.post("/v1/things", json={"title": "missing"}, headers=auth),
                            404, "not_found")

    assert error["message"] == "Thing thg_missing not found"
    assert error["details"] == {"id": "thg_missing"}


async def test_405_keeps_the_allow_header(client: AppClient, auth: dict[str, str]) -> None:
    response = await client.delete("/v1/things", headers=auth)

    assert_envelope(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


async def test_413_for_a_body_over_the_limit(client: AppClient, auth: dict[str, str], settings: Settings) -> None:
    body = b'{"title": "' + b"x" * settings.max_body_bytes + b'"}'

    response = await client.post("/v1/things", content=body, headers={**auth, "Content-Type": "application/json"})

    assert_envelope(response, 413, "payload_too_large")


async def test_413_for_a_chunked_body_over_the_limit(auth: dict[str, str], settings: Settings) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    # Litestar's test client buffers request bodies; httpx's ASGI transport streams them as ASGI chunks.
    transport = httpx.ASGITransport(app=build_app(settings))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as raw:
        response = await raw.post("/v1/things", content=chunks(), headers={**auth, "Content-Type": "application/json"})

    assert "content-length" not in response.request.headers
    assert_envelope(response, 413, "payload_too_large")


async def test_415_for_a_non_json_body_on_a_json_route(client: AppClient, auth: dict[str, str]) -> None:
    response = await client.post("/v1/things", content=b'{"title": "a"}',
                                 headers={**auth, "Content-Type": "text/plain"})

    assert assert_envelope(response, 415, "unsupported_media_type")["details"]["field"] == "Content-Type"


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
async def test_json_media_types_are_accepted(client: AppClient, auth: dict[str, str], content_type: str) -> None:
    headers = {**auth, "Content-Type": content_type}

    response = await client.post("/v1/things", content=b'{"title": "a"}', headers=headers)

    assert response.status_code == 201


async def test_422_for_a_domain_rule_with_its_code(client: AppClient, auth: dict[str, str]) -> None:
    error = assert_envelope(await client.post("/v1/things", json={"title": "illegal"}, headers=auth),
                            422, "invalid_transition")

    assert error["details"] == {"thing_id": "thg_1"}


async def test_an_invalid_domain_value_is_a_400_naming_the_field(client: AppClient, auth: dict[str, str]) -> None:
    error = assert_envelope(await client.post("/v1/things", json={"title": "invalid"}, headers=auth),
                            400, "validation_error")

    assert error["details"] == {"field": "title", "reason": "must not be 'invalid'"}


async def test_500_hides_the_cause_and_logs_it_with_the_trace_id(client: AppClient, auth: dict[str, str],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="causeloop.api"):
        response = await client.post("/v1/things", json={"title": "boom"}, headers=auth)

    error = assert_envelope(response, 500, "internal_error")
    assert "secret" not in response.text
    logged = [r for r in caplog.records if error["trace_id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None


@pytest.mark.parametrize(("body", "field", "reason"), [
    (b'{"title": 1}', "title", "Expected `str`, got `int`"),
    (b'{}', "title", "missing required field `title`"),
    (b'{"title": "a", "colour": "red"}', "colour", "unknown field `colour`"),
    (b'{"title": "a", "meta": {"level": "high"}}', "meta.level", "Expected `int`, got `str`"),
    (b'{"title": "' + b"x" * 301 + b'"}', "title", "length <= 300"),
    (b'{"title": ', "body", "malformed JSON"),
    (b'{"title": "\xff"}', "body", "malformed JSON"),
    (b'[1, 2]', "body", "Expected `object`, got `array`"),
    (b'', "body", "body is required"),
])
async def test_validation_details_name_the_field(client: AppClient, auth: dict[str, str], body: bytes, field: str,
                                                 reason: str) -> None:
    response = await client.post("/v1/things", content=body, headers={**auth, "Content-Type": "application/json"})

    details = assert_envelope(response, 400, "validation_error")["details"]
    assert details["field"] == field
    assert reason in details["reason"]


async def test_query_validation_names_the_parameter(client: AppClient, auth: dict[str, str]) -> None:
    response = await client.get("/v1/items", params={"limit": "many"}, headers=auth)

    assert assert_envelope(response, 400, "validation_error")["details"]["field"] == "limit"


@pytest.mark.parametrize(("body", "field", "reason"), [
    (b'{"title": "a", "meta": {"level": "x"}}', "meta.level", "Expected `int`, got `str`"),
    (b'{"title": "a", "meta": {}}', "meta.level", "missing required field `level`"),
    (b'{"title": "a", "colour": "red"}', "colour", "unknown field `colour`"),
    (b'{"title": ', "body", "malformed JSON"),
])
async def test_msgspec_errors_escaping_a_handler_name_the_field(client: AppClient, auth: dict[str, str],
                                                                 body: bytes, field: str, reason: str) -> None:
    response = await client.post("/v1/raw-things", content=body, headers=auth)

    details = assert_envelope(response, 400, "validation_error")["details"]
    assert details["field"] == field
    assert reason in details["reason"]
