"""Every request re-checks the token against the membership it names (api.md B "Tokens")."""

from __future__ import annotations

import jwt
from litestar.testing import AsyncTestClient

from adapters.ids import new_id
from adapters.settings import Settings
from adapters.tokens import mint_access_token
from domain.identity.roles import Role, scopes_for
from tests.e2e.conftest import Tenant


async def test_a_validly_signed_token_of_a_non_member_is_401(
        api: AsyncTestClient, tenant: Tenant, settings: Settings) -> None:  # type: ignore[type-arg]
    stranger = mint_access_token(settings, subject=new_id("usr"), workspace_id=tenant.workspace_id,
                                 role="owner", scopes=scopes_for(Role.OWNER))

    response = await api.get("/v1/issues", headers={"Authorization": f"Bearer {stranger}"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_a_member_token_for_another_workspace_is_401(
        api: AsyncTestClient, tenant: Tenant, other_tenant: Tenant,  # type: ignore[type-arg]
        settings: Settings) -> None:
    borrowed = mint_access_token(settings, subject=tenant.user_id, workspace_id=other_tenant.workspace_id,
                                 role="owner", scopes=scopes_for(Role.OWNER))

    response = await api.get("/v1/issues", headers={"Authorization": f"Bearer {borrowed}"})

    assert response.status_code == 401


async def test_scopes_are_the_current_roles_even_when_the_token_claims_more(
        api: AsyncTestClient, tenant: Tenant, settings: Settings) -> None:  # type: ignore[type-arg]
    viewer = tenant.member_headers(Role.VIEWER)
    inflated = mint_access_token(settings, subject=_subject(viewer), workspace_id=tenant.workspace_id,
                                 role="owner", scopes=scopes_for(Role.OWNER))

    read = await api.get("/v1/issues", headers=viewer)
    write = await api.post("/v1/issues", json={"title": "x"}, headers={"Authorization": f"Bearer {inflated}"})

    assert read.status_code == 200
    assert write.status_code == 403
    assert write.json()["error"]["details"] == {"required_scope": "issues:write"}


def _subject(headers: dict[str, str]) -> str:
    token = headers["Authorization"].removeprefix("Bearer ")
    subject: str = jwt.decode(token, options={"verify_signature": False})["sub"]
    return subject
