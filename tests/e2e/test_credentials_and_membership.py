"""Credentials against membership changes (needs the members API): a service account outlives its creator;
a personal token dies with its owner's membership and follows their current role."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from domain.identity.roles import Role
from tests.e2e.conftest import Tenant
from tests.e2e.members_helpers import Member, owner_headers

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_a_service_account_survives_its_creators_removal(api: Client, tenant: Tenant) -> None:
    creator = Member(tenant, Role.TENANT_ADMIN)
    account = (await api.post("/v1/service-accounts", json={"name": "ci", "role": "analyst"},
                              headers=creator.headers)).json()
    token = (await api.post(f"/v1/service-accounts/{account['id']}/tokens", json={"name": "t"},
                            headers=creator.headers)).json()

    removed = await api.delete(f"/v1/members/{creator.id}", headers=owner_headers(tenant))
    as_creator = await api.get("/v1/service-accounts", headers=creator.headers)
    as_account = await api.post("/v1/issues", json={"title": "deploy"}, headers=bearer(token["secret"]))
    still_listed = await api.get(f"/v1/service-accounts/{account['id']}", headers=owner_headers(tenant))

    assert removed.status_code == 204 and as_creator.status_code == 401
    assert as_account.status_code == 201
    assert still_listed.status_code == 200 and still_listed.json()["created_by"] == creator.user_id


async def test_a_personal_token_dies_with_its_owners_membership(api: Client, tenant: Tenant) -> None:
    owner = Member(tenant, Role.ANALYST)
    token = (await api.post("/v1/api-tokens", json={"name": "t", "scopes": ["issues:read"]},
                            headers=owner.headers)).json()
    assert (await api.get("/v1/issues", headers=bearer(token["secret"]))).status_code == 200

    suspended = await api.patch(f"/v1/members/{owner.id}", json={"status": "suspended"},
                                headers=owner_headers(tenant))
    after = await api.get("/v1/issues", headers=bearer(token["secret"]))

    assert suspended.status_code == 200 and after.status_code == 401


async def test_a_personal_token_is_narrowed_to_its_owners_current_role(api: Client, tenant: Tenant) -> None:
    owner = Member(tenant, Role.ANALYST)
    token = (await api.post("/v1/api-tokens", json={"name": "t", "scopes": ["issues:read", "issues:write"]},
                            headers=owner.headers)).json()

    demoted = await api.patch(f"/v1/members/{owner.id}", json={"role": "viewer"}, headers=owner_headers(tenant))
    write = await api.post("/v1/issues", json={"title": "x"}, headers=bearer(token["secret"]))
    read = await api.get("/v1/issues", headers=bearer(token["secret"]))

    assert demoted.status_code == 200 and write.status_code == 403 and read.status_code == 200
