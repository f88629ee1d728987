"""Writes the `workspace_settings` read model: the settings fold per workspace, and its onboarding row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from adapters.ids import keyed_uuid
from domain.workspace_settings.events import SettingsEvent, WorkspaceSlugClaimed
from domain.workspace_settings.settings import WorkspaceSettings, current_step, evolve

NAME = "workspace_settings"
VERSION = 1
CATEGORIES = frozenset({"settings"})
TABLES = ("workspace_settings", "onboarding_state")

Conn = AsyncConnection[dict[str, Any]]

_LOAD = """
SELECT s.workspace_id, s.version, s.profile, s.ai, s.retention, s.mfa_required, s.updated_at,
       coalesce(o.completed_steps, '{}') AS completed_steps, o.updated_at AS onboarding_updated_at
FROM workspace_settings s LEFT JOIN onboarding_state o ON o.workspace_id = s.workspace_id
WHERE s.workspace_id = ANY(%s)
"""
_UPSERT_SETTINGS = """
INSERT INTO workspace_settings (workspace_id, version, profile, ai, retention, mfa_required, updated_at)
VALUES (%s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s)
ON CONFLICT (workspace_id) DO UPDATE SET version = excluded.version, profile = excluded.profile, ai = excluded.ai,
    retention = excluded.retention, mfa_required = excluded.mfa_required, updated_at = excluded.updated_at
WHERE workspace_settings.version < excluded.version
"""
_UPSERT_ONBOARDING = """
INSERT INTO onboarding_state (workspace_id, completed_steps, current_step, updated_at) VALUES (%s, %s, %s, %s)
ON CONFLICT (workspace_id) DO UPDATE SET completed_steps = excluded.completed_steps,
    current_step = excluded.current_step, updated_at = excluded.updated_at
"""
_json = msgspec.json.Encoder()


def stream_of(workspace_id: str) -> UUID:
    """The settings stream of a workspace (the write side keys it the same way)."""
    return keyed_uuid("workspace-settings", workspace_id)


def from_row(row: dict[str, Any]) -> WorkspaceSettings:
    values = {key: row[key] for key in ("version", "profile", "ai", "retention", "mfa_required", "updated_at",
                                        "completed_steps", "onboarding_updated_at")}
    return msgspec.convert({**values, "id": stream_of(str(row["workspace_id"]))}, WorkspaceSettings, strict=False)


async def load(conn: Conn, workspace_ids: Sequence[str]) -> dict[str, WorkspaceSettings]:
    cur = await conn.execute(_LOAD, (list(workspace_ids),))
    return {str(row["workspace_id"]): from_row(row) for row in await cur.fetchall()}


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Fold `batch` into each workspace's settings; events at or below a row's version are repeats."""
    # Slug claims live in streams of their own (keyed by organization and slug), outside the settings fold.
    events = [event for _, event in batch
              if isinstance(event, SettingsEvent) and not isinstance(event, WorkspaceSlugClaimed)]
    if not events:
        return
    states = await load(conn, sorted({event.workspace_id for event in events}))
    changed: dict[str, WorkspaceSettings] = {}
    for event in events:
        state = states.get(event.workspace_id) or WorkspaceSettings(id=event.originator_id)
        if event.originator_version <= state.version:
            continue
        states[event.workspace_id] = changed[event.workspace_id] = evolve(state, event)
    async with conn.pipeline():
        for workspace_id, state in changed.items():
            await conn.execute(_UPSERT_SETTINGS, (
                workspace_id, state.version, _json.encode(state.profile).decode(), _json.encode(state.ai).decode(),
                _json.encode(state.retention).decode(), state.mfa_required, state.updated_at))
            step = current_step(state)
            await conn.execute(_UPSERT_ONBOARDING, (
                workspace_id, [s.value for s in state.completed_steps], step.value if step else None,
                state.onboarding_updated_at))
