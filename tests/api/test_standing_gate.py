"""A route marked FOLD_STANDING answers exactly as if the standing check had run up front (api/standing_gate.py).

These routes never read, so each check runs as the gate's own round trip (the loader); the real route that
carries the check in its read is covered through the API in tests/e2e/test_security_properties.py.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec
import pytest
from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.params import FromQuery
from litestar.testing import AsyncTestClient

from adapters.postgres import Statement
from adapters.settings import Settings
from adapters.tokens import Principal
from api.auth import requires
from api.conventions import convention_config
from api.errors import validation_error
from api.standing_gate import FOLD_STANDING, precondition
from tests.api.conftest import READ, bearer, token_for

pytestmark = pytest.mark.postgres


@get("/v1/gated", guards=[requires(READ)], opt=FOLD_STANDING, sync_to_thread=False)
def gated(n: FromQuery[int] = 0) -> dict[str, int]:
    """Answers without reading: the gate must hold the response until the check has passed."""
    if n < 0:
        raise validation_error("n", "must not be negative")
    return {"n": n}


class Standings:
    """A principal loader whose verdict depends on the subject; counts its calls."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    async def __call__(self, principal: Principal, _: State) -> Principal | None:
        self.calls[principal.subject] += 1
        if principal.subject == "usr_dead":
            return None
        if principal.subject == "usr_demoted":
            return msgspec.structs.replace(principal, scopes=frozenset())
        if principal.subject == "usr_nomfa":
            return msgspec.structs.replace(principal, needs_mfa=True)
        return principal


@get("/v1/gated/swallowing", guards=[requires(READ)], opt=FOLD_STANDING, sync_to_thread=False)
def swallowing(request: Request[Any, Any, Any]) -> dict[str, bool]:
    """Misbehaves: has its check judged on a row (as a command's append would), then catches the refusal."""
    check = precondition(request.scope)
    assert check is not None
    with contextlib.suppress(Exception):  # the misbehaviour under test
        check.verdict({"verdict": request.query_params.get("verdict", "dead")})
    return {"leaked": True}


class RowFold:
    """Never read by these routes; judges a row by its `verdict`."""

    def statement(self, principal: Principal) -> Statement:
        raise AssertionError("the routes never read")

    def judge(self, principal: Principal, row: Mapping[str, Any]) -> Principal | None:
        return None if row["verdict"] == "dead" else principal


@pytest.fixture
def standings() -> Standings:
    return Standings()


@pytest.fixture
async def client(settings: Settings, standings: Standings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = Litestar(route_handlers=[gated, swallowing], logging_config=None,
                   **convention_config(settings, principal_loader=standings, standing_fold=RowFold()))
    async with AsyncTestClient(app=app) as client:
        yield client


def caller(settings: Settings, subject: str) -> dict[str, str]:
    return bearer(token_for(settings, subject=subject, scopes=frozenset({READ})))


async def test_a_route_that_answers_without_reading_is_checked_before_its_answer_leaves(
        client: AsyncTestClient[Litestar], settings: Settings, standings: Standings) -> None:
    alive = await client.get("/v1/gated?n=3", headers=caller(settings, "usr_alive"))
    dead = await client.get("/v1/gated?n=3", headers=caller(settings, "usr_dead"))

    assert (alive.status_code, alive.json()) == (200, {"n": 3})
    assert dead.status_code == 401 and dead.json()["error"]["code"] == "unauthorized"
    assert "\"n\":" not in dead.text
    assert standings.calls == Counter({"usr_alive": 1, "usr_dead": 1})


@pytest.mark.parametrize("query", ["n=3", "n=abc", "n=-1"], ids=["fine", "bad parameter", "handler refuses"])
async def test_a_dead_token_gets_401_whatever_else_is_wrong_with_its_request(
        client: AsyncTestClient[Litestar], settings: Settings, query: str) -> None:
    response = await client.get(f"/v1/gated?{query}", headers=caller(settings, "usr_dead"))

    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("query", ["n=3", "n=abc"], ids=["fine", "bad parameter"])
async def test_a_caller_whose_current_role_lacks_the_scope_gets_403_though_the_token_claims_it(
        client: AsyncTestClient[Litestar], settings: Settings, query: str) -> None:
    response = await client.get(f"/v1/gated?{query}", headers=caller(settings, "usr_demoted"))

    assert response.status_code == 403 and response.json()["error"]["details"] == {"required_scope": READ}


async def test_a_workspace_that_requires_mfa_refuses_a_token_without_it(
        client: AsyncTestClient[Litestar], settings: Settings) -> None:
    response = await client.get("/v1/gated?n=abc", headers=caller(settings, "usr_nomfa"))

    assert response.status_code == 403 and response.json()["error"]["code"] == "mfa_required"


async def test_a_valid_callers_bad_request_is_still_its_own_error(
        client: AsyncTestClient[Litestar], settings: Settings) -> None:
    response = await client.get("/v1/gated?n=-1", headers=caller(settings, "usr_alive"))

    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


async def test_a_route_that_catches_its_refusal_still_answers_with_the_refusal(
        client: AsyncTestClient[Litestar], settings: Settings) -> None:
    refused = await client.get("/v1/gated/swallowing?verdict=dead", headers=caller(settings, "usr_alive"))
    admitted = await client.get("/v1/gated/swallowing?verdict=alive", headers=caller(settings, "usr_alive"))

    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert (admitted.status_code, admitted.json()) == (200, {"leaked": True})
