"""The ServiceAccount aggregate: a workspace's machine principal with a role, independent of its creator."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import assert_never
from uuid import UUID

import msgspec

from domain.credentials.events import (
    AnyServiceAccountEvent,
    ServiceAccountCreated,
    ServiceAccountDeleted,
    ServiceAccountEvent,
    ServiceAccountUpdated,
)
from domain.credentials.grants import require_grantable
from domain.errors import InvalidValue
from domain.events import Meta, envelope
from domain.identity.roles import Role
from domain.ids import WorkspaceId

NAME_MAX = 100
DESCRIPTION_MAX = 1000


class ServiceAccount(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    workspace_id: WorkspaceId
    version: int
    name: str
    description: str
    role: Role
    deleted: bool = False


class ServiceAccountEdit(msgspec.Struct, frozen=True, kw_only=True):
    name: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    role: Role | msgspec.UnsetType = msgspec.UNSET


def evolve(account: ServiceAccount | None, event: AnyServiceAccountEvent) -> ServiceAccount:
    if isinstance(event, ServiceAccountCreated):
        return ServiceAccount(id=event.originator_id, workspace_id=event.workspace_id,
                              version=event.originator_version, name=event.name, description=event.description,
                              role=event.role)
    assert account is not None, "a service account stream starts with ServiceAccountCreated"
    account = msgspec.structs.replace(account, version=event.originator_version)
    match event:
        case ServiceAccountUpdated():
            return msgspec.structs.replace(
                account,
                name=account.name if event.name is msgspec.UNSET else event.name,
                description=account.description if event.description is msgspec.UNSET else event.description,
                role=account.role if event.role is msgspec.UNSET else event.role)
        case ServiceAccountDeleted():
            return msgspec.structs.replace(account, deleted=True)
        case _:
            assert_never(event)


def project_service_account(account: ServiceAccount | None,
                            events: Iterable[AnyServiceAccountEvent]) -> ServiceAccount | None:
    return functools.reduce(evolve, events, account)


def clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidValue("name", "must not be blank")
    if len(name) > NAME_MAX:
        raise InvalidValue("name", f"must be at most {NAME_MAX} characters")
    return name


def clean_description(description: str) -> str:
    description = description.strip()
    if len(description) > DESCRIPTION_MAX:
        raise InvalidValue("description", f"must be at most {DESCRIPTION_MAX} characters")
    return description


def create_service_account(*, account_id: UUID, meta: Meta, name: str, description: str, role: Role,
                           granter: Role) -> ServiceAccountCreated:
    """A service account gets a role no higher than its creator's (the role order of domain.identity.roles)."""
    require_grantable(granter, role)
    return ServiceAccountCreated(**envelope(meta, account_id, 1), name=clean_name(name),
                                 description=clean_description(description), role=role)


def update_service_account(account: ServiceAccount, edit: ServiceAccountEdit, meta: Meta,
                           granter: Role) -> list[ServiceAccountEvent]:
    """Changing the role needs both the old and the new role at or below the editor's; unchanged fields are dropped."""
    name = msgspec.UNSET if edit.name is msgspec.UNSET else clean_name(edit.name)
    description = msgspec.UNSET if edit.description is msgspec.UNSET else clean_description(edit.description)
    role = edit.role
    if role is not msgspec.UNSET and role != account.role:
        require_grantable(granter, account.role)
        require_grantable(granter, role)
    changed = ServiceAccountUpdated(
        **envelope(meta, account.id, account.version + 1),
        name=msgspec.UNSET if name == account.name else name,
        description=msgspec.UNSET if description == account.description else description,
        role=msgspec.UNSET if role == account.role else role)
    if all(getattr(changed, f) is msgspec.UNSET for f in ("name", "description", "role")):
        return []
    return [changed]


def delete_service_account(account: ServiceAccount, meta: Meta,
                           granter: Role) -> list[ServiceAccountEvent]:
    """Deleting is final; deleting an account above one's own role is refused like granting it."""
    if account.deleted:
        return []
    require_grantable(granter, account.role)
    return [ServiceAccountDeleted(**envelope(meta, account.id, account.version + 1))]
