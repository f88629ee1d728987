"""Workspace settings commands: how each decides on the workspace's settings stream (commands/runner.py runs them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import cast
from uuid import UUID

import msgspec

from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.errors import NotFound
from commands.runner import CommandRunner, Context, Decision, Result
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

Rule = Callable[[WorkspaceSettings, Context], Awaitable[Sequence[SettingsEvent]]]


def settings_stream(workspace_id: str) -> UUID:
    return keyed_uuid("workspace-settings", workspace_id)


def settings_of(result: Result) -> WorkspaceSettings:
    """The workspace's settings after the command."""
    return decide.project_settings(result.stream_id, cast(list[AnySettingsEvent], result.own(SettingsEvent)))


class WorkspaceSettingsCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    async def update_workspace(self, edit: ProfileEdit, mfa_required: bool | msgspec.UnsetType, caller: Caller,
                               expected_version: int | None = None) -> Result:
        """Profile fields, a new slug's claim and the MFA requirement are appended together, or not at all."""
        provisioned, organization_id = await self._provisioned(caller)

        async def rule(state: WorkspaceSettings, context: Context) -> Sequence[SettingsEvent]:
            events = decide.update_profile(state, edit, provisioned, context.meta)
            slug = next((e.slug for e in events if isinstance(e, WorkspaceProfileUpdated)), msgspec.UNSET)
            if slug is not msgspec.UNSET:
                claim_stream = keyed_uuid("workspace-slug-claim", organization_id, slug)
                events += decide.claim_slug(claim_stream=claim_stream, organization_id=organization_id, slug=slug,
                                            owner=await self._slug_owner(claim_stream, organization_id, slug),
                                            meta=context.meta)
            if mfa_required is not msgspec.UNSET:
                events += decide.require_mfa(decide.advance(state, events), mfa_required, context.meta)
            return events

        return await self._run(caller, expected_version, rule)

    async def update_ai(self, edit: AiEdit, caller: Caller, expected_version: int | None = None) -> Result:
        async def rule(state: WorkspaceSettings, context: Context) -> Sequence[SettingsEvent]:
            return decide.update_ai(state, edit, context.meta)
        return await self._run(caller, expected_version, rule)

    async def update_retention(self, edit: RetentionEdit, caller: Caller,
                               expected_version: int | None = None) -> Result:
        async def rule(state: WorkspaceSettings, context: Context) -> Sequence[SettingsEvent]:
            return decide.update_retention(state, edit, context.meta)
        return await self._run(caller, expected_version, rule)

    async def complete_onboarding_step(self, step: OnboardingStep, caller: Caller) -> Result:
        async def rule(state: WorkspaceSettings, context: Context) -> Sequence[SettingsEvent]:
            return decide.complete_onboarding_step(state, step, context.meta)
        return await self._run(caller, None, rule)

    async def _run(self, caller: Caller, expected_version: int | None, rule: Rule) -> Result:
        """A claimed slug makes a concurrent claim conflict too: the runner then decides again on a fresh load."""
        stream_id = settings_stream(caller.workspace_id)

        async def deciding(context: Context) -> Decision:
            history = await context.load(stream_id, SettingsEvent)
            state = decide.project_settings(stream_id, cast(list[AnySettingsEvent], history))
            return Decision(stream_id, history, await rule(state, context))

        return await self._runner.run(caller, deciding, expected_version=expected_version)

    async def _slug_owner(self, claim_stream: UUID, organization_id: str, slug: str) -> WorkspaceId | None:
        """The workspace that claimed `slug` in the organization, else the one provisioned with it there."""
        claim = next(iter(await self._runner.load(claim_stream, WorkspaceSlugClaimed)), None)
        if claim is not None:
            return claim.workspace_id
        first = next(iter(await self._runner.load(keyed_uuid("workspace-slug", slug), WorkspaceProvisioned)), None)
        if first is None or first.organization_id != organization_id:
            return None
        return WorkspaceId(render("ws", first.originator_id))

    async def _provisioned(self, caller: Caller) -> tuple[Provisioned, str]:
        """The workspace's provisioned name and slug, and its organization, from its `workspace` stream."""
        stream_id = parse("ws", caller.workspace_id)
        stored = [] if stream_id is None else await self._runner.load(stream_id, WorkspaceProvisioned)
        provisioned = next(iter(stored), None)
        if provisioned is None:
            raise NotFound("workspace", caller.workspace_id)
        return Provisioned(name=provisioned.name, slug=provisioned.slug), provisioned.organization_id
