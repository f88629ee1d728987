"""Workspace profile, AI and retention settings, onboarding: commands append to the workspace's settings stream,
reads come from the `workspace_settings` projection (plus the identity projection's workspace and plan)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from api.core.auth import CurrentPrincipal, authenticated, requires, requires_any
from api.core.conditional import STALE, etag_for, expected_version
from api.core.consistency import settle
from api.core.deps import provide_caller, provide_read_pool, provide_workspace_settings_commands
from api.core.errors import ApiError, conflict, error_responses, not_found, validation_error
from api.workspace_settings import schemas
from commands.caller import Caller
from commands.runner import Result
from commands.workspace_settings import WorkspaceSettingsCommands, settings_of
from domain.workspace_settings.events import OnboardingStep
from domain.workspace_settings.settings import AiEdit, ProfileEdit, RetentionEdit, SlugTaken, WorkspaceSettings
from domain.workspace_settings.settings import current_step as first_incomplete
from projections.workspace_settings import queries
from projections.workspace_settings.projector import NAME as SETTINGS_PROJECTION

Commands = NamedDependency[WorkspaceSettingsCommands]
ReadPool = NamedDependency[AsyncConnectionPool[AsyncConn]]
Who = NamedDependency[Caller]
MFA_SCOPE = "workspace:admin"




async def answered(state: State, accepted: Result) -> dict[str, str]:
    """The settings' ETag, once the `workspace_settings` projection has the write (read-your-writes)."""
    return {"ETag": etag_for(accepted.version), **await settle(state, (SETTINGS_PROJECTION, accepted.position))}


def _check_timezone(timezone: str | msgspec.UnsetType) -> None:
    if timezone is msgspec.UNSET:
        return
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise validation_error("timezone", "must be an IANA time zone such as America/New_York") from None


def workspace_view(workspace_id: str, state: WorkspaceSettings,
                   record: queries.WorkspaceRecord | None) -> schemas.WorkspaceResponse:
    profile = state.profile
    return schemas.WorkspaceResponse(
        id=workspace_id, organization_id=record.organization_id if record else None,
        name=profile.name or (record.name if record else None), slug=profile.slug or (record.slug if record else None),
        description=profile.description, industry=profile.industry, timezone=profile.timezone, theme=profile.theme,
        mfa_required=state.mfa_required, plan=record.plan if record else None,
        seats_total=record.seats_total if record else None, seats_used=record.seats_used if record else None,
        version=state.version, created_at=record.created_at if record else None,
        updated_at=state.updated_at or (record.created_at if record else None))


def ai_view(state: WorkspaceSettings) -> schemas.AiSettingsResponse:
    return schemas.AiSettingsResponse(**msgspec.structs.asdict(state.ai), version=state.version,
                                      updated_at=state.updated_at)


def retention_view(state: WorkspaceSettings) -> schemas.RetentionResponse:
    return schemas.RetentionResponse(**msgspec.structs.asdict(state.retention), version=state.version,
                                     updated_at=state.updated_at)


def onboarding_view(state: WorkspaceSettings, facts: queries.OnboardingFacts,
                    record: queries.WorkspaceRecord | None) -> schemas.OnboardingState:
    step = first_incomplete(state)
    return schemas.OnboardingState(
        current_step=step.value if step else None,
        completed_steps=[s.value for s in OnboardingStep if s in state.completed_steps],
        workspace_created=True, members_invited=facts.members_invited, connectors_connected=facts.connectors_connected,
        alert_rule_created=facts.alert_rule_created,
        first_sync=schemas.FirstSync(status="completed" if facts.issues_ingested else "not_started",
                                     issues_ingested=facts.issues_ingested),
        updated_at=state.onboarding_updated_at or (record.created_at if record else None))


class WorkspaceSettingsController(Controller):
    path = "/v1"
    tags = ("Workspace and settings",)
    dependencies = {  # noqa: RUF012  (Litestar reads this class attribute)
        "commands": Provide(provide_workspace_settings_commands, sync_to_thread=False),
        "read_pool": Provide(provide_read_pool, sync_to_thread=False),
        "caller": Provide(provide_caller, sync_to_thread=False),
    }

    @get("/workspace", guards=[authenticated])
    async def get_workspace(self, read_pool: ReadPool, caller: Who) -> Response[schemas.WorkspaceResponse]:
        """The caller's workspace: profile, MFA requirement and plan card; any member may read it."""
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            state = await queries.workspace_settings(conn, caller.workspace_id)
            record = await queries.workspace_record(conn, caller.workspace_id)
        return Response(workspace_view(caller.workspace_id, state, record), headers={"ETag": etag_for(state.version)})

    @patch("/workspace", guards=[requires("workspace:write")],
           responses=error_responses(e409="conflict: another workspace of the organization has this slug", e412=STALE))
    async def update_workspace(self, state: State, request: Request[Any, Any, Any],
                               data: JSONBody[schemas.UpdateWorkspaceRequest], principal: CurrentPrincipal,
                               commands: Commands, caller: Who,
                               read_pool: ReadPool) -> Response[schemas.WorkspaceResponse]:
        """Change profile fields (slug unique within the organization: 409); `mfa_required` needs workspace:admin.

        A stale If-Match is 412; the ETag is the version of the workspace's settings (shared by
        /v1/workspace, /v1/settings/ai and /v1/settings/data-retention).
        """
        if data.mfa_required is not msgspec.UNSET and MFA_SCOPE not in principal.scopes:
            raise ApiError(403, "forbidden", f"Changing mfa_required needs the scope {MFA_SCOPE}",
                           {"required_scope": MFA_SCOPE})
        _check_timezone(data.timezone)
        fields = msgspec.structs.asdict(data)
        mfa_required = fields.pop("mfa_required")
        try:
            accepted = await commands.update_workspace(ProfileEdit(**fields), mfa_required, caller,
                                                       expected_version(request))
        except SlugTaken as exc:
            raise conflict(exc.message, field="slug") from None
        headers = await answered(state, accepted)
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            record = await queries.workspace_record(conn, caller.workspace_id)
        return Response(workspace_view(caller.workspace_id, settings_of(accepted), record), headers=headers)

    @get("/settings/ai", guards=[authenticated])
    async def get_ai_settings(self, read_pool: ReadPool, caller: Who) -> Response[schemas.AiSettingsResponse]:
        """The workspace's AI settings (defaults until changed); any member may read them."""
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            current = await queries.workspace_settings(conn, caller.workspace_id)
        return Response(ai_view(current), headers={"ETag": etag_for(current.version)})

    @patch("/settings/ai", guards=[requires("workspace:write")], responses=error_responses(e412=STALE))
    async def update_ai_settings(self, state: State, request: Request[Any, Any, Any],
                                 data: JSONBody[schemas.UpdateAiSettingsRequest], commands: Commands,
                                 caller: Who) -> Response[schemas.AiSettingsResponse]:
        """Change AI settings; only the fields present change. A stale If-Match is 412."""
        edit = AiEdit(**msgspec.structs.asdict(data))
        accepted = await commands.update_ai(edit, caller, expected_version(request))
        return Response(ai_view(settings_of(accepted)), headers=await answered(state, accepted))

    @get("/settings/data-retention",
         guards=[requires_any("workspace.compliance:read", "workspace:admin")])
    async def get_retention(self, read_pool: ReadPool, caller: Who) -> Response[schemas.RetentionResponse]:
        """Retention windows in days (defaults 365/365/365/90); needs workspace.compliance:read or workspace:admin."""
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            current = await queries.workspace_settings(conn, caller.workspace_id)
        return Response(retention_view(current), headers={"ETag": etag_for(current.version)})

    @patch("/settings/data-retention",
           guards=[requires_any("workspace.compliance:write", "workspace:admin")],
           responses=error_responses(
               e412=STALE, e422="retention_below_minimum: audit_days below 365 (details name the field)"))
    async def update_retention(self, state: State, request: Request[Any, Any, Any],
                               data: JSONBody[schemas.UpdateRetentionRequest], commands: Commands,
                               caller: Who) -> Response[schemas.RetentionResponse]:
        """Change retention windows; `audit_days` below 365 is 422 retention_below_minimum. Stale If-Match: 412."""
        edit = RetentionEdit(**msgspec.structs.asdict(data))
        accepted = await commands.update_retention(edit, caller, expected_version(request))
        return Response(retention_view(settings_of(accepted)), headers=await answered(state, accepted))

    @get("/onboarding", guards=[authenticated])
    async def get_onboarding(self, read_pool: ReadPool, caller: Who) -> Response[schemas.OnboardingState]:
        """The setup wizard's progress; `current_step` is the first step not completed yet."""
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            current = await queries.workspace_settings(conn, caller.workspace_id)
            facts = await queries.onboarding_facts(conn, caller.workspace_id)
            record = await queries.workspace_record(conn, caller.workspace_id)
        return Response(onboarding_view(current, facts, record), headers={"ETag": etag_for(current.version)})

    @post("/onboarding/steps/{step:str}/complete", guards=[requires("workspace:write")], status_code=200,
          responses=error_responses(e404="not_found: not one of the five step ids"))
    async def complete_onboarding_step(self, state: State, step: FromPath[str], commands: Commands, caller: Who,
                            read_pool: ReadPool) -> Response[schemas.OnboardingStepResponse]:
        """Complete a wizard step (connect_source, invite_team, review_insights, configure_alerts,
        generate_report); completing it again is a 200 no-op, an unknown step is 404."""
        try:
            wizard_step = OnboardingStep(step)
        except ValueError:
            raise not_found("onboarding step", step) from None
        accepted = await commands.complete_onboarding_step(wizard_step, caller)
        headers = await answered(state, accepted)
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            facts = await queries.onboarding_facts(conn, caller.workspace_id)
            record = await queries.workspace_record(conn, caller.workspace_id)
        body = schemas.OnboardingStepResponse(step=wizard_step.value, completed=True,
                                              onboarding=onboarding_view(settings_of(accepted), facts, record))
        return Response(body, headers=headers)
