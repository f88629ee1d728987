"""Request and response bodies of API tokens, service accounts and SCIM tokens (api.md section B "Tokens")."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import msgspec

from api.core.input_policy import RequestBody
from domain.identity.roles import ALL_SCOPES, Role
from projections.credentials.queries import TokenListing

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Description = Annotated[str, msgspec.Meta(max_length=1000)]
Scope = Annotated[str, msgspec.Meta(pattern=f"^({'|'.join(re.escape(scope) for scope in sorted(ALL_SCOPES))})$",
                                    description="a scope of GET /v1/api-tokens/scopes")]



class CreateApiTokenRequest(RequestBody, kw_only=True):
    name: Name
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=100)]
    expires_at: datetime | None = None


class CreateServiceAccountTokenRequest(RequestBody, kw_only=True):
    """Without `scopes`, the token gets every scope of the account's role that its creator also holds."""

    name: Name
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=100)] | None = None
    expires_at: datetime | None = None


class CreateScimTokenRequest(RequestBody, kw_only=True):
    name: Name
    expires_at: datetime | None = None


class CreateServiceAccountRequest(RequestBody, kw_only=True):
    name: Name
    description: Description = ""
    role: Role = Role.VIEWER


class UpdateServiceAccountRequest(RequestBody, kw_only=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    role: Role | msgspec.UnsetType = msgspec.UNSET


class IssuedToken(TokenListing, frozen=True, kw_only=True):
    """A token as created or rotated: `secret` is shown here once and can never be read again."""

    secret: str


class ServiceAccountView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    description: str
    role: Role
    status: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int


class CatalogueScope(msgspec.Struct, frozen=True, kw_only=True):
    scope: str
    granted: bool
    """Whether the caller holds it, i.e. may put it on a token."""


class CatalogueGroup(msgspec.Struct, frozen=True, kw_only=True):
    group: str
    scopes: list[CatalogueScope]


class ScopeCatalogue(msgspec.Struct, frozen=True, kw_only=True):
    data: list[CatalogueGroup]
