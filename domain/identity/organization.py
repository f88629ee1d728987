"""The Organization aggregate: one client account (plan, seats) owning its workspaces.

Its stream is keyed by the slug, so provisioning a slug that exists collides on the event store's key.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import assert_never
from uuid import UUID

import msgspec

from domain.errors import InvalidValue
from domain.events import Meta, envelope
from domain.identity.errors import Offboarded
from domain.identity.events import (
    AnyOrganizationEvent,
    OrganizationEvent,
    OrganizationOffboarded,
    OrganizationProvisioned,
    Plan,
)
from domain.identity.workspace import clean_seats, clean_slug

NAME_MAX = 200


class OrganizationState(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    slug: str
    name: str
    plan: Plan
    seats_total: int
    offboarded: bool = False


def evolve(org: OrganizationState | None, event: AnyOrganizationEvent) -> OrganizationState:
    match event:
        case OrganizationProvisioned():
            return OrganizationState(id=event.originator_id, version=event.originator_version, slug=event.slug,
                                     name=event.name, plan=event.plan, seats_total=event.seats_total)
        case OrganizationOffboarded():
            assert org is not None, "an organization stream starts with OrganizationProvisioned"
            return msgspec.structs.replace(org, version=event.originator_version, offboarded=True)
        case _:
            assert_never(event)


def project_organization(org: OrganizationState | None,
                         events: Iterable[AnyOrganizationEvent]) -> OrganizationState | None:
    return functools.reduce(evolve, events, org)


def clean_org_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidValue("org_name", f"must be 1-{NAME_MAX} characters")
    return name


def provision_organization(*, organization_id: UUID, slug: str, name: str, plan: Plan, seats_total: int,
                           meta: Meta) -> OrganizationProvisioned:
    try:
        slug = clean_slug(slug)
    except InvalidValue as exc:
        raise InvalidValue("org_slug", exc.details["reason"]) from None
    return OrganizationProvisioned(**envelope(meta, organization_id, 1), slug=slug, name=clean_org_name(name),
                                   plan=plan, seats_total=clean_seats(seats_total))


def offboard_organization(org: OrganizationState, meta: Meta) -> list[OrganizationEvent]:
    if org.offboarded:
        raise Offboarded(f"organization {org.slug} is already offboarded", slug=org.slug)
    return [OrganizationOffboarded(**envelope(meta, org.id, org.version + 1))]
