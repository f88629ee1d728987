"""Queries over the `workspace_settings` read model (run inside a tenant transaction: RLS narrows to one workspace).

A workspace that never changed a setting has no row: every query answers with the defaults then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from domain.workspace_settings.settings import WorkspaceSettings
from projections.workspace_settings.projector import load, stream_of

Conn = AsyncConnection[dict[str, Any]]


class WorkspaceRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the identity projection knows of a workspace and its organization (the plan card)."""

    id: str
    organization_id: str
    name: str
    slug: str
    created_at: datetime | None = None
    plan: str | None = None
    seats_total: int | None = None
    seats_used: int | None = None


class OnboardingFacts(msgspec.Struct, frozen=True, kw_only=True):
    """Progress the wizard shows beside its steps, counted from other read models."""

    members_invited: int = 0
    issues_ingested: int = 0
    connectors_connected: int = 0
    alert_rule_created: bool = False


async def workspace_settings(conn: Conn, workspace_id: str) -> WorkspaceSettings:
    """The workspace's settings, defaults included."""
    found = await load(conn, [workspace_id])
    return found.get(workspace_id) or WorkspaceSettings(id=stream_of(workspace_id))


async def workspace_record(conn: Conn, workspace_id: str) -> WorkspaceRecord | None:
    """The workspace as provisioned, with its organization's plan and seats (identity projection tables)."""
    cur = await conn.execute(
        "SELECT w.id, w.organization_id, w.name, w.slug, w.created_at, o.plan, o.seats_total,"
        " (SELECT count(*) FROM memberships m WHERE m.workspace_id = w.id AND m.status = 'active') AS seats_used"
        " FROM workspaces w LEFT JOIN organizations o ON o.id = w.organization_id WHERE w.id = %s",
        (workspace_id,))
    row = await cur.fetchone()
    return None if row is None else msgspec.convert(row, WorkspaceRecord, strict=False)


async def onboarding_facts(conn: Conn, workspace_id: str) -> OnboardingFacts:
    """Members besides the first (the owner who was provisioned with it), issues ingested so far, connectors
    connected (not deleted) and whether an alert rule exists."""
    cur = await conn.execute(
        "SELECT (SELECT greatest(count(*) - 1, 0) FROM memberships WHERE workspace_id = %(ws)s"
        "        AND status = 'active') AS members_invited,"
        " (SELECT coalesce(sum(n), 0)::bigint FROM issue_counts WHERE workspace_id = %(ws)s) AS issues_ingested,"
        " (SELECT count(*) FROM connectors WHERE workspace_id = %(ws)s AND NOT deleted AND status = 'connected')"
        "   AS connectors_connected,"
        " EXISTS (SELECT 1 FROM alert_rules WHERE workspace_id = %(ws)s AND NOT deleted) AS alert_rule_created",
        {"ws": workspace_id})
    row = await cur.fetchone()
    return OnboardingFacts() if row is None else msgspec.convert(row, OnboardingFacts, strict=False)
