"""SCIM bodies as the wire carries them (RFC 7643/7644), typed so that one declaration both shapes the answer and
describes it in the OpenAPI document. Request bodies accept unknown attributes: identity providers send schema
extensions (enterprise User, their own) that we ignore."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.openapi import ResponseSpec

from api.core.input_policy import RequestBody
from domain.identity.roles import Role

MEDIA_TYPE = "application/scim+json"
T = TypeVar("T")


class ScimBody(RequestBody, kw_only=True, forbid_unknown_fields=False):
    """A SCIM request body: the input policy applies, unknown attributes are ignored (RFC 7643 extensions)."""


class NewUser(ScimBody, kw_only=True):
    """The parts of a SCIM User we use (POST creates, PUT replaces; only `active` is applied on PUT)."""

    userName: str
    name: dict[str, Any] | None = None
    displayName: str | None = None
    emails: list[dict[str, Any]] | None = None
    active: bool | str = True
    """Entra ID sends booleans as the strings "True"/"False"."""
    externalId: str | None = None


class MemberValue(ScimBody, kw_only=True):
    value: str


class NewGroup(ScimBody, kw_only=True):
    """Groups are the fixed roles: `displayName` is a role key."""

    displayName: Role
    members: list[MemberValue] | None = None


class PatchOperation(ScimBody, kw_only=True):
    op: Annotated[str, msgspec.Meta(description="add, replace or remove, in any case (Entra ID capitalises)")]
    path: str | None = None
    value: Any = None


class PatchRequest(ScimBody, kw_only=True):
    schemas: list[str] = msgspec.field(default_factory=list)
    Operations: list[PatchOperation] = msgspec.field(default_factory=list)
    """At least one (else 400 invalidSyntax)."""


class Meta(msgspec.Struct, kw_only=True, omit_defaults=True):
    resourceType: str
    location: str
    created: datetime | None = None
    lastModified: datetime | None = None
    version: str | None = None


class Name(msgspec.Struct, kw_only=True):
    formatted: str
    givenName: str
    familyName: str


class Email(msgspec.Struct, kw_only=True):
    value: str
    type: str
    primary: bool


class Reference(msgspec.Struct, kw_only=True):
    """A user's group, or a group's member."""

    value: str
    display: str
    ref: str = msgspec.field(name="$ref")


class User(msgspec.Struct, kw_only=True):
    schemas: list[str]
    id: str
    userName: str
    name: Name
    displayName: str
    emails: list[Email]
    active: bool
    groups: list[Reference]
    meta: Meta


class Group(msgspec.Struct, kw_only=True, omit_defaults=True):
    schemas: list[str]
    id: str
    displayName: str
    meta: Meta
    members: list[Reference] | None = None
    """Left out when the request said `excludedAttributes=members`."""


class ListResponse(msgspec.Struct, Generic[T], kw_only=True):
    schemas: list[str]
    totalResults: int
    startIndex: int
    itemsPerPage: int
    Resources: list[T]


class Supported(msgspec.Struct, kw_only=True):
    supported: bool


class Bulk(Supported, kw_only=True):
    maxOperations: int
    maxPayloadSize: int


class Filter(Supported, kw_only=True):
    maxResults: int


class AuthenticationScheme(msgspec.Struct, kw_only=True):
    type: str
    name: str
    description: str


class ServiceProviderConfig(msgspec.Struct, kw_only=True):
    schemas: list[str]
    patch: Supported
    bulk: Bulk
    filter: Filter
    changePassword: Supported
    sort: Supported
    etag: Supported
    authenticationSchemes: list[AuthenticationScheme]


class Error(msgspec.Struct, kw_only=True, omit_defaults=True):
    """RFC 7644 3.12: `status` is a string; `scimType` only where the RFC defines one."""

    schemas: list[str]
    status: str
    detail: str
    scimType: str | None = None


def errors(**by_status: str) -> dict[int, ResponseSpec]:
    """OpenAPI entries for SCIM errors (`errors(e404="…")`), in the SCIM error schema (the conventions add 429)."""
    return {int(key[1:]): ResponseSpec(Error, description=text, media_type=MEDIA_TYPE, generate_examples=False)
            for key, text in by_status.items()}
