"""Workspace settings commands: load the workspace's settings stream, decide, append through group commit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import cast

import msgspec

from adapters.event_store import EventStore
from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.errors import NotFound, StaleVersion
from commands.group_commit import ConcurrencyConflict, GroupCommitter
from domain.events import Meta
from domain.identity.events import WorkspaceProvisioned
from domain.ids import parse
from domain.workspace_settings import settings as decide
from domain.workspace_settings.events import AnySettingsEvent, OnboardingStep, SettingsEvent
from domain.workspace_settings.settings import AiEdit, ProfileEdit, Provisioned, RetentionEdit, WorkspaceSettings

MAX_ATTEMPTS = 3

SlugCheck = Callable[[str, str, str], Awaitable[bool]]
"""(organization_id, slug, workspace_id) → is the slug another workspace's of that organization?"""

Decision = Callable[[WorkspaceSettings, Meta], Awaitable[Sequence[SettingsEvent]]]


class SettingsAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The settings after the command, and the position to wait for (0 when nothing changed)."""

    settings: WorkspaceSettings
    position: int


def utc_now() -> datetime:
    return datetime.now(UTC)


class WorkspaceSettingsCommands:
    def __init__(self, store: EventStore, committer: GroupCommitter, slug_taken: SlugCheck,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._committer = committer
        self._slug_taken = slug_taken
        self._clock = clock

    async def update_workspace(self, edit: ProfileEdit, mfa_required: bool | msgspec.UnsetType, caller: Caller,
                               expected_version: int | None = None) -> SettingsAccepted:
        """Profile fields and the MFA requirement change together, in one append."""
        provisioned, organization_id = await self._provisioned(caller)

        async def decision(state: WorkspaceSettings, meta: Meta) -> Sequence[SettingsEvent]:
            taken = edit.slug is not msgspec.UNSET and edit.slug != (state.profile.slug or provisioned.slug) and \
                await self._slug_taken(organization_id, edit.slug, caller.workspace_id)
            events = decide.update_profile(state, edit, provisioned, meta, slug_taken=taken)
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
                if expected_version is not None:
                    raise StaleVersion(expected_version, state.version + 1) from None
                continue
            return SettingsAccepted(settings=decide.advance(state, events), position=max(positions, default=0))
        raise ConcurrencyConflict("workspace settings changed concurrently; retry")

    async def _load(self, workspace_id: str) -> WorkspaceSettings:
        stream_id = keyed_uuid("workspace-settings", workspace_id)
        stored = await asyncio.to_thread(self._store.load, stream_id)
        events = cast(list[AnySettingsEvent], [e for e in stored if isinstance(e, SettingsEvent)])
        return decide.project_settings(stream_id, events)

    async def _provisioned(self, caller: Caller) -> tuple[Provisioned, str]:
        """The workspace's provisioned name and slug, and its organization, from its `workspace` stream."""
        stream_id = parse("ws", caller.workspace_id)
        stored = [] if stream_id is None else await asyncio.to_thread(self._store.load, stream_id)
        provisioned = next((e for e in stored if isinstance(e, WorkspaceProvisioned)), None)
        if provisioned is None:
            raise NotFound("workspace", caller.workspace_id)
        return Provisioned(name=provisioned.name, slug=provisioned.slug), provisioned.organization_id
