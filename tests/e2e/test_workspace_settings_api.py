"""Workspace profile, AI and retention settings through the public API, on real Postgres and NATS."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import nats
import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from api.app import create_app
from api.core.auth import http_handlers, route_scope
from domain.identity.roles import Role
from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ADMIN = Role.TENANT_ADMIN


async def patch(api: Client, path: str, tenant: Tenant, body: dict[str, Any], role: Role = ADMIN,
                **headers: str) -> Any:
    return await api.patch(path, json=body, headers={**tenant.headers(role), **headers})


async def test_a_new_workspace_shows_its_provisioned_name_slug_plan_and_the_defaults(
        api: Client, tenant: Tenant) -> None:
    response = await api.get("/v1/workspace", headers=tenant.headers(Role.VIEWER))

    body = response.json()
    assert response.status_code == 200 and response.headers["etag"] == '"0"'
    assert (body["id"], body["name"], body["slug"]) == (tenant.workspace_id, tenant.slug, tenant.slug)
    assert body["organization_id"].startswith("org_")
    assert (body["timezone"], body["theme"], body["mfa_required"], body["description"]) == ("UTC", "light", False,
                                                                                            None)
    assert (body["plan"], body["seats_total"], body["seats_used"]) == ("free", 10, 1)


async def test_a_workspace_patch_changes_only_the_given_fields_and_the_next_get_sees_them(
        api: Client, tenant: Tenant) -> None:
    response = await patch(api, "/v1/workspace", tenant, {"name": "Acme Payments", "description": "EU team",
                                                           "timezone": "America/New_York", "theme": "dark"})

    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    after = await api.get("/v1/workspace", headers=tenant.headers(Role.VIEWER))
    assert after.json() == response.json()
    assert (after.json()["name"], after.json()["slug"], after.json()["timezone"], after.json()["theme"]) == (
        "Acme Payments", tenant.slug, "America/New_York", "dark")


async def test_a_patch_to_the_current_values_appends_nothing(api: Client, tenant: Tenant) -> None:
    response = await patch(api, "/v1/workspace", tenant, {"name": tenant.slug, "timezone": "UTC", "theme": "light"})

    assert response.status_code == 200
    assert response.headers["etag"] == '"0"' and response.headers["x-causeloop-position"] == "0"


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "A"}, "name"), ({"name": "x" * 101}, "name"), ({"slug": "-acme"}, "slug"),
    ({"slug": "Acme_1"}, "slug"), ({"slug": "a" * 61}, "slug"), ({"description": "x" * 2001}, "description"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"), ({"theme": "blue"}, "theme"), ({"colour": "red"}, "colour"),
    ({"mfa_required": "yes"}, "mfa_required"),
])
async def test_an_invalid_workspace_field_is_a_400_naming_it(api: Client, tenant: Tenant, body: dict[str, Any],
                                                            field: str) -> None:
    response = await patch(api, "/v1/workspace", tenant, body)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["details"]["field"] == field


async def test_a_slug_another_workspace_of_the_organization_holds_or_ever_held_is_a_409(
        api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    renamed = await patch(api, "/v1/workspace", other_tenant, {"slug": f"{other_tenant.slug}-renamed"})
    renamed_back = await patch(api, "/v1/workspace", other_tenant, {"slug": other_tenant.slug})

    once_held = await patch(api, "/v1/workspace", tenant, {"slug": f"{other_tenant.slug}-renamed"})
    provisioned = await patch(api, "/v1/workspace", tenant, {"slug": other_tenant.slug})
    free = await patch(api, "/v1/workspace", tenant, {"slug": f"{tenant.slug}-new"})
    back = await patch(api, "/v1/workspace", tenant, {"slug": tenant.slug})

    assert renamed.status_code == 200 and renamed.json()["slug"] == f"{other_tenant.slug}-renamed"
    assert renamed_back.status_code == 200 and renamed_back.json()["slug"] == other_tenant.slug
    assert once_held.status_code == 409 and once_held.json()["error"]["code"] == "conflict"
    assert once_held.json()["error"]["details"] == {"field": "slug"}
    assert provisioned.status_code == 409
    assert free.status_code == 200 and free.json()["slug"] == f"{tenant.slug}-new"
    assert back.status_code == 200 and back.json()["slug"] == tenant.slug


async def test_two_workspaces_racing_for_one_slug_cannot_both_win(api: Client, tenant: Tenant,
                                                                  other_tenant: Tenant) -> None:
    slug = f"{tenant.slug}-contested"

    results = await asyncio.gather(*(patch(api, "/v1/workspace", t, {"slug": slug}) for t in (tenant, other_tenant)))

    assert sorted(r.status_code for r in results) == [200, 409]


async def test_a_viewer_reads_the_workspace_but_cannot_change_it(api: Client, tenant: Tenant) -> None:
    viewer = tenant.member_headers(Role.VIEWER)

    read = await api.get("/v1/workspace", headers=viewer)
    write = await api.patch("/v1/workspace", json={"name": "Mine now"}, headers=viewer)

    assert read.status_code == 200
    assert write.status_code == 403 and write.json()["error"]["details"]["required_scope"] == "workspace:write"


async def test_mfa_required_changes_only_with_workspace_admin_and_applies_on_the_next_request(
        api: Client, tenant: Tenant) -> None:
    writer_only = tenant.headers(ADMIN, frozenset({"workspace:write"}))

    refused = await api.patch("/v1/workspace", json={"mfa_required": True}, headers=writer_only)
    allowed = await patch(api, "/v1/workspace", tenant, {"mfa_required": True})

    assert refused.status_code == 403 and refused.json()["error"]["details"]["required_scope"] == "workspace:admin"
    assert allowed.status_code == 200 and allowed.json()["mfa_required"] is True
    blocked = await api.get("/v1/issues", headers=tenant.headers())
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "mfa_required"


async def test_a_stale_if_match_is_412_and_changes_nothing(api: Client, tenant: Tenant) -> None:
    await patch(api, "/v1/workspace", tenant, {"industry": "FinTech"})

    stale = await patch(api, "/v1/workspace", tenant, {"industry": "Retail"}, **{"If-Match": '"0"'})
    fresh = await patch(api, "/v1/settings/ai", tenant, {"auto_link": False}, **{"If-Match": '"1"'})

    assert stale.status_code == 412 and stale.json()["error"]["code"] == "precondition_failed"
    assert fresh.status_code == 200 and fresh.headers["etag"] == '"2"'
    assert (await api.get("/v1/workspace", headers=tenant.headers())).json()["industry"] == "FinTech"


async def test_ai_settings_start_at_the_documented_defaults_and_patch_partially(api: Client, tenant: Tenant) -> None:
    before = await api.get("/v1/settings/ai", headers=tenant.headers(Role.VIEWER))

    changed = await patch(api, "/v1/settings/ai", tenant, {"confidence_threshold": 0.9, "proof_window_days": 14})
    after = await api.get("/v1/settings/ai", headers=tenant.headers(Role.VIEWER))

    assert before.status_code == 200 and before.headers["etag"] == '"0"'
    assert {k: v for k, v in before.json().items() if k not in {"version", "updated_at"}} == {
        "auto_link": True, "confidence_threshold": 0.8, "proof_window_days": 30, "recurrence_window_days": 30,
        "alert_probability_threshold": 0.7}
    assert changed.status_code == 200 and after.json() == changed.json()
    assert (after.json()["confidence_threshold"], after.json()["proof_window_days"],
            after.json()["alert_probability_threshold"]) == (0.9, 14, 0.7)


@pytest.mark.parametrize(("body", "field"), [
    ({"confidence_threshold": 1.5}, "confidence_threshold"), ({"proof_window_days": 6}, "proof_window_days"),
    ({"proof_window_days": 366}, "proof_window_days"), ({"recurrence_window_days": 0}, "recurrence_window_days"),
    ({"alert_probability_threshold": -0.1}, "alert_probability_threshold"), ({"auto_link": "on"}, "auto_link"),
])
async def test_an_invalid_ai_setting_is_a_400_naming_it(api: Client, tenant: Tenant, body: dict[str, Any],
                                                       field: str) -> None:
    response = await patch(api, "/v1/settings/ai", tenant, body)

    assert response.status_code == 400 and response.json()["error"]["details"]["field"] == field


async def test_an_analyst_cannot_change_ai_settings(api: Client, tenant: Tenant) -> None:
    response = await patch(api, "/v1/settings/ai", tenant, {"auto_link": False}, role=Role.ANALYST)

    assert response.status_code == 403


async def test_retention_defaults_are_readable_by_a_compliance_admin_but_not_a_viewer(
        api: Client, tenant: Tenant) -> None:
    compliance = await api.get("/v1/settings/data-retention",
                               headers=tenant.member_headers(Role.COMPLIANCE_ADMIN))
    viewer = await api.get("/v1/settings/data-retention", headers=tenant.member_headers(Role.VIEWER))

    assert compliance.status_code == 200
    assert {k: compliance.json()[k] for k in ("issues_days", "activity_days", "audit_days", "prompt_logs_days")} == {
        "issues_days": 365, "activity_days": 365, "audit_days": 365, "prompt_logs_days": 90}
    assert viewer.status_code == 403
    assert viewer.json()["error"]["details"]["required_scope"] == "workspace.compliance:read|workspace:admin"


async def test_retention_changes_with_compliance_write_or_workspace_admin(api: Client, tenant: Tenant) -> None:
    compliance = tenant.member_headers(Role.COMPLIANCE_ADMIN)

    by_compliance = await api.patch("/v1/settings/data-retention", json={"issues_days": 180, "activity_days": 90},
                                    headers=compliance)
    by_admin = await patch(api, "/v1/settings/data-retention", tenant, {"audit_days": 730, "prompt_logs_days": 30})
    by_analyst = await patch(api, "/v1/settings/data-retention", tenant, {"issues_days": 30}, role=Role.ANALYST)
    after = await api.get("/v1/settings/data-retention", headers=compliance)

    assert by_compliance.status_code == 200 and by_admin.status_code == 200
    assert by_analyst.status_code == 403
    assert {k: after.json()[k] for k in ("issues_days", "activity_days", "audit_days", "prompt_logs_days")} == {
        "issues_days": 180, "activity_days": 90, "audit_days": 730, "prompt_logs_days": 30}
    assert after.headers["etag"] == '"2"'


async def test_audit_retention_below_365_days_is_422_naming_the_field(api: Client, tenant: Tenant) -> None:
    response = await patch(api, "/v1/settings/data-retention", tenant, {"issues_days": 30, "audit_days": 364})

    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "retention_below_minimum"
    assert error["details"]["field"] == "audit_days"
    assert (await api.get("/v1/settings/data-retention", headers=tenant.headers(ADMIN))).json()["issues_days"] == 365


@pytest.mark.parametrize(("body", "field"), [
    ({"issues_days": 0}, "issues_days"), ({"prompt_logs_days": 4000}, "prompt_logs_days"),
    ({"activity_days": "long"}, "activity_days"), ({"purge_days": 3}, "purge_days"),
])
async def test_an_invalid_retention_window_is_a_400_naming_it(api: Client, tenant: Tenant, body: dict[str, Any],
                                                             field: str) -> None:
    response = await patch(api, "/v1/settings/data-retention", tenant, body)

    assert response.status_code == 400 and response.json()["error"]["details"]["field"] == field


async def test_another_workspace_never_sees_these_settings(api: Client, tenant: Tenant,
                                                           other_tenant: Tenant) -> None:
    await patch(api, "/v1/workspace", tenant, {"name": "Tenant One", "mfa_required": True})
    await patch(api, "/v1/settings/ai", tenant, {"auto_link": False})
    await patch(api, "/v1/settings/data-retention", tenant, {"audit_days": 1000})

    workspace = (await api.get("/v1/workspace", headers=other_tenant.headers())).json()
    ai = (await api.get("/v1/settings/ai", headers=other_tenant.headers())).json()
    retention = (await api.get("/v1/settings/data-retention", headers=other_tenant.headers(ADMIN))).json()

    assert (workspace["id"], workspace["name"], workspace["mfa_required"]) == (other_tenant.workspace_id,
                                                                               other_tenant.slug, False)
    assert ai["auto_link"] is True and ai["version"] == 0
    assert retention["audit_days"] == 365


async def test_settings_events_reach_nats_with_only_the_changed_fields(
        api: Client, tenant: Tenant, settings: Settings) -> None:
    received: asyncio.Queue[nats.aio.msg.Msg] = asyncio.Queue()
    nc = await nats.connect(settings.nats_url)
    await nc.subscribe(f"{settings.subject_prefix}.{tenant.workspace_id}.settings.>", cb=received.put)
    await nc.flush()

    # Retention first: once mfa_required is on, this token (minted without a second factor) gets 403.
    await patch(api, "/v1/settings/data-retention", tenant, {"audit_days": 400})
    await patch(api, "/v1/workspace", tenant, {"theme": "dark", "mfa_required": True})
    messages = [await asyncio.wait_for(received.get(), 10) for _ in range(3)]
    await nc.close()

    payloads = [msgspec.json.decode(message.data) for message in messages]
    assert [p["type"] for p in payloads] == ["RetentionSettingsUpdated", "WorkspaceProfileUpdated",
                                             "MfaRequirementChanged"]
    assert [p["data"] for p in payloads] == [{"audit_days": 400}, {"theme": "dark"}, {"mfa_required": True}]
    assert [p["stream_version"] for p in payloads] == [1, 2, 3]
    assert all(p["stream_id"].startswith("wss_") and p["workspace_id"] == tenant.workspace_id for p in payloads)
    assert payloads[0]["actor"] == {"kind": "user", "id": tenant.user_id}


def test_the_route_table_reports_the_any_of_scopes_of_the_retention_routes(settings: Settings) -> None:
    app = create_app(settings, configure_logging=False)

    scopes = {(path, method): route_scope(handler) for path, handler in http_handlers(app)
              for method in handler.http_methods}

    assert scopes[("/v1/settings/data-retention", "PATCH")] == "workspace.compliance:write|workspace:admin"
    assert scopes[("/v1/settings/data-retention", "GET")] == "workspace.compliance:read|workspace:admin"
    assert scopes[("/v1/workspace", "GET")] is None and scopes[("/v1/workspace", "PATCH")] == "workspace:write"


async def test_openapi_lists_the_settings_routes_with_bearer_auth_and_their_error_codes(api: Client) -> None:
    schema = (await api.get("/openapi.json")).json()

    paths = schema["paths"]
    assert {"get", "patch"} <= set(paths["/v1/workspace"]) and {"get", "patch"} <= set(paths["/v1/settings/ai"])
    assert {"get", "patch"} <= set(paths["/v1/settings/data-retention"]) and "get" in paths["/v1/onboarding"]
    assert paths["/v1/settings/data-retention"]["patch"]["security"] == [{"BearerAuth": []}]
    assert {"409", "412"} <= set(paths["/v1/workspace"]["patch"]["responses"])
    assert "422" in paths["/v1/settings/data-retention"]["patch"]["responses"]
    assert "404" in paths["/v1/onboarding/steps/{step}/complete"]["post"]["responses"]
    ai = next(v for k, v in schema["components"]["schemas"].items() if k.endswith("AiSettingsResponse"))
    assert "default 0.70" in ai["properties"]["alert_probability_threshold"]["description"]
