"""Operator provisioning and offboarding of a client: organization + workspace + owner, in ONE append.

`EventStore.append` saves every stream of its batch in one transaction, so a client is either fully
provisioned or not at all. The organization's stream is keyed by its slug: a duplicate slug collides there
(checked first for a clear message; the store's key settles a race).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import cast
from uuid import UUID

import msgspec

from adapters.event_store import EventStore
from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.group_commit import ConcurrencyConflict
from commands.identity import user_stream, workspace_stream
from commands.members import known_timezones, membership_id
from commands.runner import Context, Decision, run_blocking, utc_now
from domain.errors import DomainError, InvalidValue
from domain.events import Actor, ActorKind, DomainEvent
from domain.identity import organization as organizations
from domain.identity import user as users
from domain.identity import workspace as workspaces
from domain.identity.events import (
    DEFAULT_PLAN,
    DEFAULT_SEATS,
    AnyOrganizationEvent,
    AnyWorkspaceEvent,
    OrganizationEvent,
    Plan,
    UserEvent,
    WorkspaceEvent,
)
from domain.identity.workspace import Organization
from domain.ids import OrganizationId, UserId, WorkspaceId, parse, render

OPERATOR = Actor(kind=ActorKind.SYSTEM, id="operator-cli")


class DuplicateOrganization(DomainError):
    code = "conflict"


class UnknownOrganization(DomainError):
    code = "not_found"


class Provision(msgspec.Struct, frozen=True, kw_only=True):
    org_name: str
    org_slug: str
    owner_email: str
    owner_name: str | None = None
    workspace_name: str | None = None
    plan: Plan = DEFAULT_PLAN
    timezone: str = "UTC"
    seats: int = DEFAULT_SEATS


class Provisioned(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: str
    workspace_id: str
    owner_user_id: str
    membership_id: str
    owner_reused: bool = False
    position: int = 0


class Offboarded(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: str
    workspace_ids: list[str]
    position: int = 0


def organization_stream(slug: str) -> UUID:
    """The same key LOCAL_ORGANIZATION's id uses, so an organization's id is a function of its slug."""
    return keyed_uuid("organization-slug", workspaces.clean_slug(slug))


class ProvisioningCommands:
    """Synchronous, for the operator CLI and test fixtures: each command runs through the command runner
    (commands/runner.py `run_blocking`)."""

    def __init__(self, store: EventStore, *, actor: Actor = OPERATOR,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._actor = actor
        self._clock = clock or utc_now

    def provision(self, cmd: Provision) -> Provisioned:
        """The workspace's slug is the organization's; an existing user with the owner's email is reused."""
        slug = _org_slug(cmd.org_slug)
        if cmd.timezone not in known_timezones():
            raise InvalidValue("timezone", "must be an IANA time zone such as Europe/Paris or UTC")
        org_uuid, ws_uuid, user_uuid = organization_stream(slug), workspace_stream(slug), user_stream(cmd.owner_email)
        workspace_id, owner_id = WorkspaceId(render("ws", ws_uuid)), UserId(render("usr", user_uuid))
        reused: list[bool] = []

        async def deciding(context: Context) -> Decision:
            if await context.load(org_uuid, OrganizationEvent):
                raise DuplicateOrganization(f"an organization with slug {slug!r} already exists", slug=slug)
            if await context.load(ws_uuid, WorkspaceEvent):
                raise DuplicateOrganization(f"a workspace with slug {slug!r} already exists", slug=slug)
            meta = context.meta
            org_event = organizations.provision_organization(organization_id=org_uuid, slug=slug, name=cmd.org_name,
                                                             plan=cmd.plan, seats_total=cmd.seats, meta=meta)
            reused[:] = [bool(await context.load(user_uuid, UserEvent))]
            events: list[DomainEvent] = [org_event]
            if not reused[0]:
                events.append(users.register_user(user_id=user_uuid, email=cmd.owner_email, name=cmd.owner_name,
                                                  meta=meta))
            organization = Organization(id=OrganizationId(render("org", org_uuid)), slug=slug, name=org_event.name)
            events += workspaces.provision_workspace(
                workspace_id=ws_uuid, slug=slug, name=(cmd.workspace_name or "").strip() or org_event.name,
                organization=organization, owner_user_id=owner_id, meta=meta, plan=cmd.plan, seats_total=cmd.seats,
                timezone=cmd.timezone)
            return Decision(org_uuid, (), events)

        try:
            result = run_blocking(self._store, Caller(workspace_id=workspace_id, actor=self._actor), deciding,
                                  clock=self._clock)
        except ConcurrencyConflict:
            raise DuplicateOrganization(f"organization {slug!r} (or its owner) was created concurrently; "
                                        "check and retry", slug=slug) from None
        return Provisioned(organization_id=render("org", org_uuid), workspace_id=workspace_id, owner_user_id=owner_id,
                           membership_id=membership_id(workspace_id, owner_id), owner_reused=reused[0],
                           position=result.position)

    def offboard(self, org_slug: str) -> Offboarded:
        """Every workspace of the organization records WorkspaceOffboarded, the organization its own, at once."""
        slug = _org_slug(org_slug)
        org_uuid = organization_stream(slug)
        workspace_ids = [WorkspaceId(render("ws", workspace_stream(slug)))]

        async def deciding(context: Context) -> Decision:
            history = await context.load(org_uuid, OrganizationEvent)
            org = organizations.project_organization(None, cast(list[AnyOrganizationEvent], history))
            if org is None:
                raise UnknownOrganization(f"no organization with slug {slug!r}", slug=slug)
            events: list[DomainEvent] = []
            for workspace_id in workspace_ids:
                stream_id = parse("ws", workspace_id)
                loaded = [] if stream_id is None else await context.load(stream_id, WorkspaceEvent)
                workspace = workspaces.project_workspace(None, cast(list[AnyWorkspaceEvent], loaded))
                if workspace is not None:
                    events += workspaces.offboard_workspace(workspace, msgspec.structs.replace(
                        context.meta, workspace_id=workspace_id))
            events += organizations.offboard_organization(org, context.meta)
            return Decision(org_uuid, history, events)

        result = run_blocking(self._store, Caller(workspace_id=workspace_ids[0], actor=self._actor), deciding,
                              clock=self._clock)
        return Offboarded(organization_id=render("org", org_uuid), workspace_ids=list(workspace_ids),
                          position=result.position)


def _org_slug(slug: str) -> str:
    try:
        return workspaces.clean_slug(slug)
    except InvalidValue as exc:
        raise InvalidValue("org_slug", exc.details["reason"]) from None


