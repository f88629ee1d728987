"""ETags are versions; If-Match is parsed strictly and a stale one is a 412."""

from __future__ import annotations

import pytest

from api.core.conditional import etag_for, parse_if_match
from api.core.errors import ApiError
from tests.api.conftest import THING_VERSION, AppClient

pytestmark = pytest.mark.postgres


def test_an_etag_is_the_quoted_version() -> None:
    assert etag_for(3) == '"3"'


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("*", None), (' * ', None), ('"3"', 3), ('W/"3"', 3), (' "12" ', 12), ('"0"', 0),
])
def test_if_match_values(header: str | None, expected: int | None) -> None:
    assert parse_if_match(header) == expected


@pytest.mark.parametrize("header", ["3", '"abc"', '"1", "2"', "", 'W/3', '"3', '"-1"', '"99999999999999999999"'])
def test_a_malformed_if_match_is_a_400_naming_the_header(header: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_if_match(header)

    assert raised.value.status == 400
    assert raised.value.code == "validation_error"
    assert isinstance(raised.value.details, dict)
    assert raised.value.details["field"] == "If-Match"


async def test_a_write_with_a_stale_if_match_is_refused(client: AppClient, auth: dict[str, str]) -> None:
    response = await client.patch("/v1/things/thg_1", json={"title": "renamed"},
                                  headers={**auth, "If-Match": f'"{THING_VERSION - 1}"'})

    assert response.status_code == 412
    assert response.json()["error"]["code"] == "precondition_failed"
    assert response.json()["error"]["trace_id"] == response.headers["x-request-id"]
    assert response.headers["etag"] == f'"{THING_VERSION}"'
    assert response.json()["error"]["details"] == {"current_version": THING_VERSION}


@pytest.mark.parametrize("if_match", [f'"{THING_VERSION}"', "*", None])
async def test_a_write_with_a_current_or_no_if_match_succeeds(client: AppClient, auth: dict[str, str],
                                                              if_match: str | None) -> None:
    headers = {**auth, **({"If-Match": if_match} if if_match else {})}

    response = await client.patch("/v1/things/thg_1", json={"title": "renamed"}, headers=headers)

    assert response.status_code == 200
    assert response.headers["etag"] == f'"{THING_VERSION + 1}"'


async def test_a_write_with_a_malformed_if_match_is_a_400(client: AppClient, auth: dict[str, str]) -> None:
    response = await client.patch("/v1/things/thg_1", json={"title": "renamed"}, headers={**auth, "If-Match": "v3"})

    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "If-Match"
