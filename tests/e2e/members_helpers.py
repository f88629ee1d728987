"""Helpers for the member/invitation e2e tests: members with their own tokens, ids, and waiting for writes."""

from __future__ import annotations

from typing import Any

import jwt
from litestar.testing import AsyncTestClient

from commands.members import membership_id
from domain.identity.roles import Role
from tests.e2e.conftest import Tenant

Client = AsyncTestClient  # type: ignore[type-arg]


class Member:
    def __init__(self, tenant: Tenant, role: Role, email: str | None = None) -> None:
        self.headers = tenant.member_headers(role, email)
        self.user_id = subject(self.headers)
        self.id = membership_id(tenant.workspace_id, self.user_id)


def subject(headers: dict[str, str]) -> str:
    token = headers["Authorization"].removeprefix("Bearer ")
    sub: str = jwt.decode(token, options={"verify_signature": False})["sub"]
    return sub


def owner_headers(tenant: Tenant) -> dict[str, str]:
    """The owner's full token (tenant.headers() narrows to analyst scopes by default)."""
    return tenant.headers(Role.OWNER)


async def invite(api: Client, tenant: Tenant, email: str, role: str = "analyst",
                 headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await api.post("/v1/invitations", json={"email": email, "role": role},
                              headers=headers or owner_headers(tenant))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
