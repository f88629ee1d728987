"""Service accounts and their tokens, and SCIM tokens, through the public API (real Postgres + NATS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from domain.identity.roles import Role
from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ADMIN = Role.TENANT_ADMIN


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def create_account(api: Client, tenant: Tenant, role: str = "analyst", name: str = "CI deploy"
                         ) -> dict[str, Any]:
    response = await api.post("/v1/service-accounts", json={"name": name, "role": role},
                              headers=tenant.headers(ADMIN))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def issue_token(api: Client, tenant: Tenant, account_id: str, **fields: Any) -> dict[str, Any]:
    response = await api.post(f"/v1/service-accounts/{account_id}/tokens", json={"name": "deploy", **fields},
                              headers=tenant.headers(ADMIN))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_service_account_token_acts_as_the_account_with_the_accounts_role(api: Client,
                                                                                  tenant: Tenant) -> None:
    account = await create_account(api, tenant, role="analyst")
    token = await issue_token(api, tenant, account["id"])

    created = await api.post("/v1/issues", json={"title": "Deploy failed"}, headers=bearer(token["secret"]))

    assert account["id"].startswith("sa_") and account["role"] == "analyst" and account["status"] == "active"
    assert token["secret"].startswith("clp_sa_") and len(token["secret"]) >= len("clp_sa_") + 43
    assert token["kind"] == "service_account" and token["owner_id"] == account["id"]
    assert "issues:write" in token["scopes"] and "members:admin" not in token["scopes"]
    assert created.status_code == 201, created.text
    activity = await api.get(f"/v1/issues/{created.json()['id']}/activity", headers=tenant.headers())
    assert activity.json()["data"][0]["actor"] == {"kind": "service_account", "id": account["id"]}


async def test_the_account_list_and_detail_show_it_and_the_token_list_never_shows_a_secret(
        api: Client, tenant: Tenant) -> None:
    account = await create_account(api, tenant)
    token = await issue_token(api, tenant, account["id"])
    await api.get("/v1/issues", headers=bearer(token["secret"]))

    listed = await api.get("/v1/service-accounts", headers=tenant.headers(ADMIN))
    one = await api.get(f"/v1/service-accounts/{account['id']}", headers=tenant.headers(ADMIN))
    tokens = await api.get(f"/v1/service-accounts/{account['id']}/tokens", headers=tenant.headers(ADMIN))

    assert [a["id"] for a in listed.json()["data"]] == [account["id"]] and listed.json()["page"]["total"] == 1
    assert one.json() == account
    assert [t["id"] for t in tokens.json()["data"]] == [token["id"]]
    assert token["secret"] not in tokens.text and "secret" not in tokens.json()["data"][0]
    assert tokens.json()["data"][0]["last_used_at"] is not None


async def test_changing_the_accounts_role_narrows_its_tokens_at_once(api: Client, tenant: Tenant) -> None:
    account = await create_account(api, tenant, role="analyst")
    token = await issue_token(api, tenant, account["id"])

    patched = await api.patch(f"/v1/service-accounts/{account['id']}", json={"role": "viewer"},
                              headers=tenant.headers(ADMIN))
    write = await api.post("/v1/issues", json={"title": "x"}, headers=bearer(token["secret"]))
    read = await api.get("/v1/issues", headers=bearer(token["secret"]))

    assert patched.status_code == 200 and patched.json()["role"] == "viewer" and patched.json()["version"] == 2
    assert write.status_code == 403 and read.status_code == 200


async def test_deleting_an_account_revokes_its_tokens_at_once(api: Client, tenant: Tenant) -> None:
    account = await create_account(api, tenant)
    token = await issue_token(api, tenant, account["id"])
    assert (await api.get("/v1/issues", headers=bearer(token["secret"]))).status_code == 200

    deleted = await api.delete(f"/v1/service-accounts/{account['id']}", headers=tenant.headers(ADMIN))
    after = await api.get("/v1/issues", headers=bearer(token["secret"]))
    detail = await api.get(f"/v1/service-accounts/{account['id']}", headers=tenant.headers(ADMIN))

    assert deleted.status_code == 204
    assert after.status_code == 401 and after.json()["error"]["code"] == "unauthorized"
    assert detail.status_code == 404


async def test_a_revoked_service_account_token_is_401_at_once_and_listed_as_revoked(api: Client,
                                                                                   tenant: Tenant) -> None:
    account = await create_account(api, tenant)
    token = await issue_token(api, tenant, account["id"])

    revoked = await api.delete(f"/v1/service-accounts/{account['id']}/tokens/{token['id']}",
                               headers=tenant.headers(ADMIN))
    after = await api.get("/v1/issues", headers=bearer(token["secret"]))
    listed = await api.get(f"/v1/service-accounts/{account['id']}/tokens?include_revoked=true",
                           headers=tenant.headers(ADMIN))

    assert revoked.status_code == 204 and after.status_code == 401
    assert [(t["id"], t["status"]) for t in listed.json()["data"]] == [(token["id"], "revoked")]


async def test_a_viewer_cannot_create_service_accounts(api: Client, tenant: Tenant) -> None:
    response = await api.post("/v1/service-accounts", json={"name": "x", "role": "read_only"},
                              headers=tenant.headers(Role.VIEWER))

    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


async def test_nobody_creates_or_changes_an_account_above_their_own_role(api: Client, tenant: Tenant) -> None:
    admin = tenant.member_headers(Role.TENANT_ADMIN)
    above = await api.post("/v1/service-accounts", json={"name": "x", "role": "owner"}, headers=admin)
    side_role = await api.post("/v1/service-accounts", json={"name": "x", "role": "compliance_admin"},
                               headers=admin)
    account = await create_account(api, tenant, role="viewer")
    raise_role = await api.patch(f"/v1/service-accounts/{account['id']}", json={"role": "owner"}, headers=admin)
    owners = await api.post("/v1/service-accounts", json={"name": "root", "role": "owner"},
                            headers=tenant.headers(Role.OWNER))
    touch_owners = await api.delete(f"/v1/service-accounts/{owners.json()['id']}", headers=admin)

    assert above.status_code == 403 and above.json()["error"]["details"]["role"] == "owner"
    assert side_role.status_code == 201  # the shared role order ranks compliance_admin below tenant_admin
    assert raise_role.status_code == 403
    assert owners.status_code == 201 and touch_owners.status_code == 403


async def test_a_token_cannot_carry_scopes_beyond_the_accounts_role(api: Client, tenant: Tenant) -> None:
    account = await create_account(api, tenant, role="viewer")

    response = await api.post(f"/v1/service-accounts/{account['id']}/tokens",
                              json={"name": "t", "scopes": ["issues:write"]}, headers=tenant.headers(ADMIN))

    assert response.status_code == 403
    assert response.json()["error"]["details"]["scope"] == "issues:write"


async def test_another_workspaces_account_and_token_ids_are_404(api: Client, tenant: Tenant,
                                                              other_tenant: Tenant) -> None:
    account = await create_account(api, tenant)
    token = await issue_token(api, tenant, account["id"])

    responses = [
        await api.get(f"/v1/service-accounts/{account['id']}", headers=other_tenant.headers(ADMIN)),
        await api.patch(f"/v1/service-accounts/{account['id']}", json={"name": "mine"},
                        headers=other_tenant.headers(ADMIN)),
        await api.delete(f"/v1/service-accounts/{account['id']}", headers=other_tenant.headers(ADMIN)),
        await api.get(f"/v1/service-accounts/{account['id']}/tokens", headers=other_tenant.headers(ADMIN)),
        await api.delete(f"/v1/service-accounts/{account['id']}/tokens/{token['id']}",
                         headers=other_tenant.headers(ADMIN)),
        await api.get("/v1/service-accounts/sa_nonsense", headers=tenant.headers(ADMIN)),
    ]

    assert [r.status_code for r in responses] == [404] * 6
    assert (await api.get("/v1/issues", headers=bearer(token["secret"]))).status_code == 200


async def test_a_scim_token_is_shown_once_listed_without_secret_and_refused_on_v1(api: Client,
                                                                                   tenant: Tenant) -> None:
    created = await api.post("/v1/settings/scim-tokens", json={"name": "Okta"}, headers=tenant.headers(ADMIN))
    secret = created.json()["secret"]

    listed = await api.get("/v1/settings/scim-tokens", headers=tenant.headers(ADMIN))
    on_v1 = await api.get("/v1/issues", headers=bearer(secret))
    revoked = await api.delete(f"/v1/settings/scim-tokens/{created.json()['id']}", headers=tenant.headers(ADMIN))
    after = await api.get("/v1/settings/scim-tokens", headers=tenant.headers(ADMIN))

    assert created.status_code == 201 and secret.startswith("clp_scim_") and created.json()["kind"] == "scim"
    assert [t["id"] for t in listed.json()["data"]] == [created.json()["id"]] and secret not in listed.text
    assert on_v1.status_code == 401
    assert revoked.status_code == 204 and after.json()["data"] == []


async def test_only_members_admins_manage_scim_tokens(api: Client, tenant: Tenant) -> None:
    response = await api.post("/v1/settings/scim-tokens", json={"name": "Okta"},
                              headers=tenant.headers(Role.ANALYST))

    assert response.status_code == 403


async def test_a_scim_token_is_made_only_by_a_credential_holding_what_it_does(api: Client, tenant: Tenant) -> None:
    """A SCIM token reads, provisions, re-roles and suspends members: members:admin alone does not cover it."""
    narrowed = tenant.headers(Role.OWNER, frozenset({"members:admin"}))

    response = await api.post("/v1/settings/scim-tokens", json={"name": "Okta"}, headers=narrowed)

    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"field": "scopes", "scope": "members:read"}


async def test_a_service_account_token_that_expires_makes_no_credential_that_outlives_it(
        api: Client, tenant: Tenant) -> None:
    expiry = datetime.now(UTC) + timedelta(minutes=5)
    account = await create_account(api, tenant, role="tenant_admin", name="provisioner")
    robot = bearer((await issue_token(api, tenant, account["id"], expires_at=expiry.isoformat()))["secret"])
    other = await create_account(api, tenant, role="viewer", name="dashboards")

    forever_sa = await api.post(f"/v1/service-accounts/{other['id']}/tokens", json={"name": "t"}, headers=robot)
    forever_scim = await api.post("/v1/settings/scim-tokens", json={"name": "Okta"}, headers=robot)
    bounded_sa = await api.post(f"/v1/service-accounts/{other['id']}/tokens",
                                json={"name": "t", "expires_at": expiry.isoformat()}, headers=robot)
    bounded_scim = await api.post("/v1/settings/scim-tokens", json={"name": "Okta", "expires_at": expiry.isoformat()},
                                  headers=robot)

    assert [forever_sa.status_code, forever_scim.status_code] == [403, 403]
    assert forever_sa.json()["error"]["details"]["field"] == forever_scim.json()["error"]["details"]["field"] == \
        "expires_at"
    assert [bounded_sa.status_code, bounded_scim.status_code] == [201, 201], (bounded_sa.text, bounded_scim.text)
