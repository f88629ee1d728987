"""SCIM 2.0 provisioning through the public API, as Okta and Entra ID call it (real Postgres + NATS)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from adapters.tokens import mint_access_token
from domain.identity.roles import Role, scopes_for
from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
SCIM = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Content-Type": SCIM}


async def scim_token(api: Client, tenant: Tenant) -> str:
    created = await api.post("/v1/settings/scim-tokens", json={"name": f"idp-{uuid.uuid4().hex[:6]}"},
                             headers=tenant.headers(Role.TENANT_ADMIN))
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return secret


def okta_user(email: str, **fields: Any) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"primary": True, "value": email, "type": "work"}], "active": True,
            "externalId": "00u1abcd", **fields}


async def provision(api: Client, secret: str, email: str | None = None, **fields: Any) -> dict[str, Any]:
    response = await api.post("/scim/v2/Users", json=okta_user(email or f"ada-{uuid.uuid4().hex[:8]}@example.test",
                                                                **fields), headers=bearer(secret))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def user_headers(settings: Settings, tenant: Tenant, user_id: str, role: Role = Role.VIEWER) -> dict[str, str]:
    token = mint_access_token(settings, subject=user_id, workspace_id=tenant.workspace_id, role=role.value,
                              scopes=scopes_for(role))
    return {"Authorization": f"Bearer {token}"}


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


async def test_okta_provisions_a_member_finds_them_by_username_and_deactivates_them(
        api: Client, tenant: Tenant, settings: Settings) -> None:
    secret = await scim_token(api, tenant)
    email = f"ada-{uuid.uuid4().hex[:8]}@example.test"

    created = await api.post("/scim/v2/Users", json=okta_user(email), headers=bearer(secret))
    user = created.json()
    found = await api.get(f'/scim/v2/Users?filter=userName eq "{email.upper()}"', headers=bearer(secret))
    as_member = await api.get("/v1/issues", headers=user_headers(settings, tenant, user["id"]))
    deactivated = await api.patch(f"/scim/v2/Users/{user['id']}",
                                  json=patch({"op": "replace", "value": {"active": False}}), headers=bearer(secret))
    after = await api.get("/v1/issues", headers=user_headers(settings, tenant, user["id"]))

    assert created.status_code == 201 and created.headers["content-type"].startswith(SCIM)
    assert created.headers["location"] == f"/scim/v2/Users/{user['id']}"
    assert user["id"].startswith("usr_") and user["userName"] == email and user["active"] is True
    assert user["name"]["formatted"] == "Ada Lovelace" and user["groups"][0]["value"] == "viewer"
    body = found.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert body["totalResults"] == 1 and [r["id"] for r in body["Resources"]] == [user["id"]]
    assert as_member.status_code == 200
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    assert after.status_code == 401


async def test_entra_string_booleans_and_capitalised_ops_deactivate_and_reactivate(
        api: Client, tenant: Tenant, settings: Settings) -> None:
    secret = await scim_token(api, tenant)
    user = await provision(api, secret)

    off = await api.patch(f"/scim/v2/Users/{user['id']}",
                          json=patch({"op": "Replace", "path": "active", "value": "False"}), headers=bearer(secret))
    blocked = await api.get("/v1/issues", headers=user_headers(settings, tenant, user["id"]))
    on = await api.patch(f"/scim/v2/Users/{user['id']}",
                         json=patch({"op": "Replace", "path": "active", "value": "True"}), headers=bearer(secret))
    back = await api.get("/v1/issues", headers=user_headers(settings, tenant, user["id"]))

    assert off.json()["active"] is False and blocked.status_code == 401
    assert on.json()["active"] is True and back.status_code == 200


async def test_delete_deprovisions_by_suspending_the_membership(api: Client, tenant: Tenant,
                                                                settings: Settings) -> None:
    secret = await scim_token(api, tenant)
    user = await provision(api, secret)

    deleted = await api.delete(f"/scim/v2/Users/{user['id']}", headers=bearer(secret))
    fetched = await api.get(f"/scim/v2/Users/{user['id']}", headers=bearer(secret))

    assert deleted.status_code == 204
    assert fetched.json()["active"] is False
    assert (await api.get("/v1/issues", headers=user_headers(settings, tenant, user["id"]))).status_code == 401


async def test_provisioning_an_existing_member_is_409_in_the_scim_error_schema(api: Client, tenant: Tenant) -> None:
    secret = await scim_token(api, tenant)
    user = await provision(api, secret)

    again = await api.post("/scim/v2/Users", json=okta_user(user["userName"]), headers=bearer(secret))

    assert again.status_code == 409 and again.headers["content-type"].startswith(SCIM)
    assert again.json() == {"schemas": [ERROR_SCHEMA], "status": "409", "detail": again.json()["detail"],
                            "scimType": "uniqueness"}


async def test_a_user_provisioned_inactive_is_a_suspended_member(api: Client, tenant: Tenant) -> None:
    secret = await scim_token(api, tenant)

    user = await provision(api, secret, active=False)

    assert user["active"] is False


async def test_groups_are_roles_and_their_member_patches_set_the_role(api: Client, tenant: Tenant,
                                                                      settings: Settings) -> None:
    secret = await scim_token(api, tenant)
    user = await provision(api, secret)

    groups = await api.get("/scim/v2/Groups?excludedAttributes=members", headers=bearer(secret))
    added = await api.patch("/scim/v2/Groups/analyst", json=patch(
        {"op": "add", "path": "members", "value": [{"value": user["id"]}]}), headers=bearer(secret))
    writes = await api.post("/v1/issues", json={"title": "x"},
                            headers=user_headers(settings, tenant, user["id"], Role.ANALYST))
    removed = await api.patch("/scim/v2/Groups/analyst", json=patch(
        {"op": "remove", "path": f'members[value eq "{user["id"]}"]'}), headers=bearer(secret))
    fetched = await api.get(f"/scim/v2/Users/{user['id']}", headers=bearer(secret))

    assert [g["displayName"] for g in groups.json()["Resources"]] == [r.value for r in Role]
    assert added.status_code == 200 and user["id"] in [m["value"] for m in added.json()["members"]]
    assert writes.status_code == 201
    assert removed.status_code == 200 and user["id"] not in [m["value"] for m in removed.json()["members"]]
    assert fetched.json()["groups"][0]["value"] == "viewer"


async def test_scim_cannot_make_an_owner(api: Client, tenant: Tenant) -> None:
    secret = await scim_token(api, tenant)
    user = await provision(api, secret)

    response = await api.patch("/scim/v2/Groups/owner", json=patch(
        {"op": "add", "path": "members", "value": [{"value": user["id"]}]}), headers=bearer(secret))

    assert response.status_code == 403 and response.json()["schemas"] == [ERROR_SCHEMA]


async def test_list_pages_with_start_index_and_count(api: Client, tenant: Tenant) -> None:
    secret = await scim_token(api, tenant)
    for _ in range(2):
        await provision(api, secret)

    page = await api.get("/scim/v2/Users?startIndex=2&count=1", headers=bearer(secret))

    body = page.json()
    assert body["totalResults"] == 3 and body["startIndex"] == 2 and body["itemsPerPage"] == 1  # owner + 2


async def test_only_a_live_scim_token_opens_scim_routes(api: Client, tenant: Tenant) -> None:
    secret = await scim_token(api, tenant)
    pat = (await api.post("/v1/api-tokens", json={"name": "p", "scopes": ["members:admin"]},
                          headers=tenant.headers(Role.TENANT_ADMIN))).json()["secret"]
    tokens = (await api.get("/v1/settings/scim-tokens", headers=tenant.headers(Role.TENANT_ADMIN))).json()["data"]

    missing = await api.get("/scim/v2/Users")
    with_jwt = await api.get("/scim/v2/Users", headers=tenant.headers(Role.TENANT_ADMIN))
    with_pat = await api.get("/scim/v2/Users", headers=bearer(pat))
    await api.delete(f"/v1/settings/scim-tokens/{tokens[0]['id']}", headers=tenant.headers(Role.TENANT_ADMIN))
    revoked = await api.get("/scim/v2/Users", headers=bearer(secret))

    for response in (missing, with_jwt, with_pat, revoked):
        assert response.status_code == 401
        assert response.json()["schemas"] == [ERROR_SCHEMA] and response.json()["status"] == "401"


async def test_another_workspaces_user_is_404(api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = await provision(api, await scim_token(api, other_tenant))
    mine = await scim_token(api, tenant)

    responses = [await api.get(f"/scim/v2/Users/{theirs['id']}", headers=bearer(mine)),
                 await api.patch(f"/scim/v2/Users/{theirs['id']}",
                                 json=patch({"op": "replace", "path": "active", "value": False}),
                                 headers=bearer(mine)),
                 await api.delete(f"/scim/v2/Users/{theirs['id']}", headers=bearer(mine)),
                 await api.get("/scim/v2/Users/usr_garbage", headers=bearer(mine))]

    assert [r.status_code for r in responses] == [404] * 4
    assert all(r.json()["schemas"] == [ERROR_SCHEMA] for r in responses if r.status_code == 404)


async def test_an_unsupported_filter_is_400_invalid_filter(api: Client, tenant: Tenant) -> None:
    secret = await scim_token(api, tenant)

    response = await api.get('/scim/v2/Users?filter=title co "x"', headers=bearer(secret))

    assert response.status_code == 400 and response.json()["scimType"] == "invalidFilter"
