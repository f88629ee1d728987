"""The `workspace_settings` read model: equals the fold, ignores repeats, rebuilds identically, isolates tenants."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.ids import keyed_uuid
from adapters.postgres import READER_ROLE, WRITER_ROLE, connect
from adapters.settings import Settings
from domain.events import DomainEvent
from domain.ids import WorkspaceId
from domain.workspace_settings import settings as decide
from domain.workspace_settings.events import OnboardingStep, Theme
from domain.workspace_settings.settings import AiEdit, ProfileEdit, Provisioned, RetentionEdit, WorkspaceSettings
from projections.workspace_settings import queries
from projections.workspace_settings.projector import NAME, project
from tests.builders import T1, meta
from tests.workers.pipeline import appended, isolated, running, wait_for_projection
from workers.operations import rebuild

ONE = WorkspaceId("ws_01KV1PX3NQ3B497SHK7JTNT525")
TWO = WorkspaceId("ws_01KV1PX3NQ3B497SHK7JTNT999")


def history(workspace_id: WorkspaceId) -> tuple[list[DomainEvent], WorkspaceSettings]:
    """A few changes of every kind, decided one after the other; returns them and the state they fold to."""
    state = WorkspaceSettings(id=keyed_uuid("workspace-settings", workspace_id))
    events: list[DomainEvent] = []
    at = meta(T1, workspace_id)
    for decision in (
        lambda s: decide.update_profile(s, ProfileEdit(name="Acme", theme=Theme.DARK, industry="FinTech"),
                                        Provisioned(name="acme", slug="acme"), at),
        lambda s: decide.update_ai(s, AiEdit(confidence_threshold=0.9), at),
        lambda s: decide.require_mfa(s, True, at),
        lambda s: decide.update_retention(s, RetentionEdit(audit_days=800), at),
        lambda s: decide.complete_onboarding_step(s, OnboardingStep.INVITE_TEAM, at),
        lambda s: decide.update_ai(s, AiEdit(auto_link=False), at),
    ):
        new = decision(state)
        state = decide.advance(state, new)
        events += new
    return events, state


async def read_back(settings: Settings, workspace_id: str) -> tuple[WorkspaceSettings, dict[str, Any] | None]:
    conn = await connect(settings)
    async with conn, conn.transaction():
        await conn.execute("SELECT set_config('role', %s, true), set_config('causeloop.workspace_id', %s, true)",
                           (READER_ROLE, workspace_id))
        state = await queries.workspace_settings(conn, workspace_id)
        cur = await conn.execute("SELECT completed_steps, current_step FROM onboarding_state")  # no WHERE: RLS
        return state, await cur.fetchone()


async def test_the_read_model_equals_the_fold_and_ignores_repeated_events(settings: Settings) -> None:
    events, expected = history(ONE)
    with isolated(settings) as s:
        conn = await connect(s)
        async with conn:
            for batch in (events, events[2:4], events):
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL role {WRITER_ROLE}")
                    await project(conn, list(enumerate(batch, start=1)))  # type: ignore[arg-type]

        state, onboarding = await read_back(s, ONE)

    assert state == expected
    assert state.mfa_required and state.retention.audit_days == 800 and not state.ai.auto_link
    assert onboarding == {"completed_steps": ["invite_team"], "current_step": "connect_source"}


async def test_a_reader_sees_only_its_own_workspace_settings_and_the_defaults_elsewhere(settings: Settings) -> None:
    events, expected = history(ONE)
    with isolated(settings) as s:
        conn = await connect(s)
        async with conn, conn.transaction():
            await conn.execute(f"SET LOCAL role {WRITER_ROLE}")
            await project(conn, list(enumerate(events, start=1)))  # type: ignore[arg-type]

        own, _ = await read_back(s, ONE)
        other, other_onboarding = await read_back(s, TWO)
        reader = await connect(s)
        async with reader, reader.transaction():
            await reader.execute("SELECT set_config('role', %s, true), set_config('causeloop.workspace_id', %s, true)",
                                 (READER_ROLE, TWO))
            cur = await reader.execute("SELECT count(*) AS n FROM workspace_settings")  # no WHERE on purpose
            visible = (await cur.fetchone() or {})["n"]
            cur = await reader.execute("SELECT mfa_required FROM workspace_settings WHERE workspace_id = %s", (ONE,))
            assert await cur.fetchone() is None  # RLS hides the other tenant's row, even asked for by id

    assert own == expected
    assert other == WorkspaceSettings(id=keyed_uuid("workspace-settings", TWO)) and other_onboarding is None
    assert visible == 0


async def test_a_rebuild_from_zero_equals_the_live_read_model(settings: Settings) -> None:
    with isolated(settings) as s:
        async with running(s, projections=(NAME,)):
            await wait_for_projection(s, appended(s, history(ONE)[0] + history(TWO)[0]), name=NAME)
            live = [await read_back(s, ws) for ws in (ONE, TWO)]

            await asyncio.to_thread(rebuild, s, NAME)
            rebuilt = [await read_back(s, ws) for ws in (ONE, TWO)]

    assert rebuilt == live
    assert live[1][0].profile.name == "Acme"
