"""Two API processes, each caching callers' standing (api/core/standing_cache.py): after a revocation, a removal, a
demotion or an offboarding commits through one of them (or the operator's provisioning commands), the OTHER refuses
the old standing. Its cache keeps entries 600 s here, so only the projectors' announcement can make it forget. The
delays are printed at the end of the module; `python -m bench --only standing` measures their p99.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest

from adapters.event_store import EventStore
from adapters.settings import Settings
from adapters.tokens import mint_access_token
from cli.embedded import free_port
from commands.provisioning import Provision, ProvisioningCommands
from domain.identity.roles import Role, scopes_for
from tests.e2e.conftest import Tenant
from tests.e2e.members_helpers import Member
from tests.processes import serving, start, stop, wait_until
from tests.workers.pipeline import isolated

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
REFUSED_WITHIN_S = 5.0
"""Far below the cache's 600 s here: a refusal at all proves the announcement; the bench measures the delay."""


class Replicas:
    def __init__(self, settings: Settings, store: EventStore, a: str, b: str) -> None:
        self.settings, self.store, self.a, self.b = settings, store, a, b
        self.delays: list[float] = []

    def refused_by_b(self, path: str, headers: dict[str, str], change: Callable[[], None], status: int) -> None:
        """`path` answers 200 on B (twice: cached), `change` happens through A, then B answers `status`."""
        assert [httpx.get(f"{self.b}{path}", headers=headers).status_code for _ in range(2)] == [200, 200]
        started = time.monotonic()
        change()
        wait_until(lambda: httpx.get(f"{self.b}{path}", headers=headers).status_code == status,
                   f"B to answer {status}", REFUSED_WITHIN_S)
        self.delays.append(time.monotonic() - started)


@pytest.fixture(scope="module")
def replicas(settings: Settings) -> Iterator[Replicas]:
    with isolated(settings) as own:
        ports = [free_port(0), free_port(0)]
        processes = [start(own, "relay"), start(own, "projector")]
        processes += [start(msgspec.structs.replace(own, port=port), "api", STANDING_CACHE_MAX_AGE_S="600")
                      for port in ports]
        store = EventStore(own, pool_size=1)
        try:
            a, b = (f"http://127.0.0.1:{port}" for port in ports)
            wait_until(lambda: serving(a) and serving(b), "both API processes to serve")
            yield (done := Replicas(own, store, a, b))
            ordered = sorted(done.delays)
            print(f"\nstanding refused by the other process after: median {statistics.median(ordered) * 1000:.0f}"
                  f" ms, max {ordered[-1] * 1000:.0f} ms over {len(ordered)} changes")
        finally:
            store.close()
            for process in processes:
                stop(process)


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201, 204), response.text
    return response.json() if response.content else None


def test_a_revoked_api_token_is_refused_by_the_other_process(replicas: Replicas) -> None:
    owner = Tenant(replicas.settings, replicas.store).headers(Role.OWNER)
    for n in range(5):
        token = ok(httpx.post(f"{replicas.a}/v1/api-tokens", json={"name": f"t{n}", "scopes": ["issues:read"]},
                              headers=owner))
        revoke = f"{replicas.a}/v1/api-tokens/{token['id']}"
        replicas.refused_by_b("/v1/issues", {"Authorization": f"Bearer {token['secret']}"},
                              lambda url=revoke: ok(httpx.delete(url, headers=owner)), 401)


def test_a_removed_member_is_refused_by_the_other_process(replicas: Replicas) -> None:
    tenant = Tenant(replicas.settings, replicas.store)
    member = Member(tenant, Role.ANALYST)
    replicas.refused_by_b("/v1/issues", member.headers, lambda: ok(httpx.delete(
        f"{replicas.a}/v1/members/{member.id}", headers=tenant.headers(Role.OWNER))), 401)


def test_a_demoted_member_loses_the_scope_on_the_other_process(replicas: Replicas) -> None:
    tenant = Tenant(replicas.settings, replicas.store)
    member = Member(tenant, Role.ANALYST)
    replicas.refused_by_b("/v1/issues", member.headers, lambda: ok(httpx.patch(
        f"{replicas.a}/v1/members/{member.id}", json={"role": "read_only"}, headers=tenant.headers(Role.OWNER))), 403)


def test_an_offboarded_organization_is_refused_by_every_process(replicas: Replicas) -> None:
    slug = f"gone-{uuid.uuid4().hex[:8]}"
    commands = ProvisioningCommands(replicas.store)
    done = commands.provision(Provision(org_name="Gone Inc", org_slug=slug, owner_email=f"o@{slug}.example"))
    token = mint_access_token(replicas.settings, subject=done.owner_user_id, workspace_id=done.workspace_id,
                              role=Role.OWNER.value, scopes=scopes_for(Role.OWNER))
    owner = {"Authorization": f"Bearer {token}"}
    wait_until(lambda: httpx.get(f"{replicas.b}/v1/issues", headers=owner).status_code == 200, "the owner's access")

    def offboard() -> None:
        commands.offboard(slug)

    replicas.refused_by_b("/v1/issues", owner, offboard, 401)
    assert httpx.get(f"{replicas.a}/v1/issues", headers=owner).status_code == 401
