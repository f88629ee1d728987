"""Every /v1 route re-checks its caller against current state before anything else runs (api/core/auth.py with the
principal loader of api/core/principals.py): a dead token gets its 401, a narrowed role its 403, whatever else is wrong
with the request, and the route never runs for them. The real loader is covered through the API in
tests/e2e/test_security_properties.py and tests/cli/test_standing_across_processes.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.params import FromQuery
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from adapters.tokens import Principal
from api.core.auth import requires
from api.core.conventions import convention_config
from api.core.errors import validation_error
from tests.api.conftest import READ, bearer, token_for

pytestmark = pytest.mark.postgres


RAN: Counter[str] = Counter()


@get("/v1/gated", guards=[requires(READ)], sync_to_thread=False)
def gated(n: FromQuery[int] = 0) -> dict[str, int]:
    """Answers without reading anything; counts its runs."""
    RAN["gated"] += 1
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


@pytest.fixture
def standings() -> Standings:
    return Standings()


@pytest.fixture
async def client(settings: Settings, standings: Standings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = Litestar(route_handlers=[gated], logging_config=None,
                   **convention_config(settings, principal_loader=standings))
    async with AsyncTestClient(app=app) as client:
        yield client


def caller(settings: Settings, subject: str) -> dict[str, str]:
    return bearer(token_for(settings, subject=subject, scopes=frozenset({READ})))


async def test_the_route_runs_only_for_a_caller_the_check_admits(
        client: AsyncTestClient[Litestar], settings: Settings, standings: Standings) -> None:
    RAN.clear()
    alive = await client.get("/v1/gated?n=3", headers=caller(settings, "usr_alive"))
    dead = await client.get("/v1/gated?n=3", headers=caller(settings, "usr_dead"))
    demoted = await client.get("/v1/gated?n=3", headers=caller(settings, "usr_demoted"))

    assert (alive.status_code, alive.json()) == (200, {"n": 3})
    assert dead.status_code == 401 and dead.json()["error"]["code"] == "unauthorized"
    assert "\"n\":" not in dead.text and demoted.status_code == 403
    assert standings.calls == Counter({"usr_alive": 1, "usr_dead": 1, "usr_demoted": 1})
    assert Counter({"gated": 1}) == RAN


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
