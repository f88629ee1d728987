"""Workspace settings commands: load the workspace's settings stream, decide, append through group commit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import cast
from uuid import UUID

import msgspec

from adapters.event_store import EventStore
from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.errors import NotFound, StaleVersion
from commands.group_commit import ConcurrencyConflict, GroupCommitter
from domain.events import Meta
from domain.identity.events import WorkspaceProvisioned
from domain.ids import WorkspaceId, parse, render
from domain.workspace_settings import settings as decide
from domain.workspace_settings.events import (
    AnySettingsEvent,
    OnboardingStep,
    SettingsEvent,
    WorkspaceProfileUpdated,
    WorkspaceSlugClaimed,
)
from domain.workspace_settings.settings import AiEdit, ProfileEdit, Provisioned, RetentionEdit, WorkspaceSettings

MAX_ATTEMPTS = 3

Decision = Callable[[WorkspaceSettings, Meta], Awaitable[Sequence[SettingsEvent]]]


class SettingsAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The settings after the command, and the position to wait for (0 when nothing changed)."""

    settings: WorkspaceSettings
    position: int


def utc_now() -> datetime:
    return datetime.now(UTC)


class WorkspaceSettingsCommands:
    def __init__(self, store: EventStore, committer: GroupCommitter, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._committer = committer
        self._clock = clock

    async def update_workspace(self, edit: ProfileEdit, mfa_required: bool | msgspec.UnsetType, caller: Caller,
                               expected_version: int | None = None) -> SettingsAccepted:
        """Profile fields, a new slug's claim and the MFA requirement are appended together, or not at all."""
        provisioned, organization_id = await self._provisioned(caller)

        async def decision(state: WorkspaceSettings, meta: Meta) -> Sequence[SettingsEvent]:
            events = decide.update_profile(state, edit, provisioned, meta)
            slug = next((e.slug for e in events if isinstance(e, WorkspaceProfileUpdated)), msgspec.UNSET)
            if slug is not msgspec.UNSET:
                claim_stream = keyed_uuid("workspace-slug-claim", organization_id, slug)
                events += decide.claim_slug(claim_stream=claim_stream, organization_id=organization_id, slug=slug,
                                            owner=await self._slug_owner(claim_stream, organization_id, slug),
                                            meta=meta)
            if mfa_required is not msgspec.UNSET:
                events += decide.require_mfa(decide.advance(state, events), mfa_required, meta)
            return events

        return await self._run(caller, expected_version, decision)

    async def update_ai(self, edit: AiEdit, caller: Caller, expected_version: int | None = None) -> SettingsAccepted:
        async def decision(state: WorkspaceSettings, meta: Meta) -> Sequence[SettingsEvent]:
            return decide.update_ai(state, edit, meta)
        return await self._run(caller, expected_version, decision)

    async def update_retention(self, edit: RetentionEdit, caller: Caller,
                               expected_version: int | None = None) -> SettingsAccepted:
        async def decision(state: WorkspaceSettings, meta: Meta) -> Sequence[SettingsEvent]:
            return decide.update_retention(state, edit, meta)
        return await self._run(caller, expected_version, decision)

    async def complete_onboarding_step(self, step: OnboardingStep, caller: Caller) -> SettingsAccepted:
        async def decision(state: WorkspaceSettings, meta: Meta) -> Sequence[SettingsEvent]:
            return decide.complete_onboarding_step(state, step, meta)
        return await self._run(caller, None, decision)

    async def _run(self, caller: Caller, expected_version: int | None, decision: Decision) -> SettingsAccepted:
        for _ in range(MAX_ATTEMPTS):
            state = await self._load(caller.workspace_id)
            if expected_version is not None and expected_version != state.version:
                raise StaleVersion(expected_version, state.version)
            events = await decision(state, caller.meta(self._clock()))
            try:
                positions = await asyncio.wrap_future(self._committer.submit(events))
            except ConcurrencyConflict:
                continue  # the settings stream moved (the If-Match check above then says 412) or a slug was claimed
            return SettingsAccepted(settings=decide.advance(state, events), position=max(positions, default=0))
        raise ConcurrencyConflict("workspace settings changed concurrently; retry")

    async def _load(self, workspace_id: str) -> WorkspaceSettings:
        stream_id = keyed_uuid("workspace-settings", workspace_id)
        stored = await asyncio.to_thread(self._store.load, stream_id)
        events = cast(list[AnySettingsEvent], [e for e in stored if isinstance(e, SettingsEvent)])
        return decide.project_settings(stream_id, events)

    async def _slug_owner(self, claim_stream: UUID, organization_id: str, slug: str) -> WorkspaceId | None:
        """The workspace that claimed `slug` in the organization, else the one provisioned with it there."""
        claimed = await asyncio.to_thread(self._store.load, claim_stream)
        claim = next((e for e in claimed if isinstance(e, WorkspaceSlugClaimed)), None)
        if claim is not None:
            return claim.workspace_id
        provisioned = await asyncio.to_thread(self._store.load, keyed_uuid("workspace-slug", slug))
        first = next((e for e in provisioned if isinstance(e, WorkspaceProvisioned)), None)
        if first is None or first.organization_id != organization_id:
            return None
        return WorkspaceId(render("ws", first.originator_id))

    async def _provisioned(self, caller: Caller) -> tuple[Provisioned, str]:
        """The workspace's provisioned name and slug, and its organization, from its `workspace` stream."""
        stream_id = parse("ws", caller.workspace_id)
        stored = [] if stream_id is None else await asyncio.to_thread(self._store.load, stream_id)
        provisioned = next((e for e in stored if isinstance(e, WorkspaceProvisioned)), None)
        if provisioned is None:
            raise NotFound("workspace", caller.workspace_id)
        return Provisioned(name=provisioned.name, slug=provisioned.slug), provisioned.organization_id
