"""Connector catalogue and connectors through the public API (real Postgres + NATS)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from domain.identity.roles import Role
from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ADMIN = Role.TENANT_ADMIN
SECRET = "ghp_very-secret-token-value-123"
TYPES = {"jira", "github", "pagerduty", "servicenow", "datadog", "sentry", "opsgenie", "linear", "zendesk",
         "custom_api"}


async def create(api: Client, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"type": "github", "config": {"owner": "acme", "repo": "web"}, "credentials": {"token": SECRET},
            **fields}
    response = await api.post("/v1/connectors", json=body, headers=tenant.headers(ADMIN))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_the_catalog_lists_every_type_with_its_auth_ingests_permissions_and_schema(
        api: Client, tenant: Tenant) -> None:
    listed = await api.get("/v1/connector-catalog", headers=tenant.headers(Role.VIEWER))
    jira = await api.get("/v1/connector-catalog/jira", headers=tenant.headers(Role.VIEWER))
    unknown = await api.get("/v1/connector-catalog/nope", headers=tenant.headers(Role.VIEWER))

    assert listed.status_code == 200
    entries = {entry["type"]: entry for entry in listed.json()["data"]}
    assert set(entries) >= TYPES
    for entry in entries.values():
        assert entry["auth"] in {"oauth", "api_key", "none"} and entry["oauth"] == (entry["auth"] == "oauth")
        assert entry["ingests"] and entry["permissions"] and entry["config_schema"]["type"] == "object"
    assert jira.json()["type"] == "jira" and jira.json()["oauth"] is False
    assert jira.json()["config_schema"]["required"] == ["site_url"]
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


async def test_a_connector_is_created_read_and_listed_without_ever_showing_its_credentials(
        api: Client, tenant: Tenant, settings: Settings) -> None:
    created = await create(api, tenant, display_name="Web repo")

    one = await api.get(f"/v1/connectors/{created['id']}", headers=tenant.headers(Role.VIEWER))
    listed = await api.get("/v1/connectors", headers=tenant.headers(Role.VIEWER))

    assert created["id"].startswith("con_") and created["status"] == "connected"
    assert created["schedule"] == "*/30 * * * *" and created["has_credentials"] is True
    assert created["last_sync_at"] is None and created["last_error"] is None
    assert one.status_code == 200 and one.json() == created and one.headers["etag"] == '"1"'
    assert [c["id"] for c in listed.json()["data"]] == [created["id"]]
    for text in (created, one.text, listed.text):
        assert SECRET not in str(text) and "'credentials'" not in str(text) and '"credentials"' not in str(text)


async def test_credentials_are_sealed_in_the_event_store(api: Client, tenant: Tenant, settings: Settings) -> None:
    created = await create(api, tenant)
    with psycopg.connect(settings.database_url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name LIKE %s",
            (settings.database_schema, "%events")).fetchall()]
        stored = b"".join(bytes(row[0]) for table in tables for row in conn.execute(
            f'SELECT state FROM "{settings.database_schema}"."{table}"').fetchall())
    assert b"ConnectorCreated" in stored and created["id"]
    assert SECRET.encode() not in stored


async def test_bad_input_is_a_400_naming_the_field(api: Client, tenant: Tenant) -> None:
    cases = [
        ({"type": "nope"}, "type"),
        ({"type": "github", "config": {"owner": "a"}}, "config.repo"),
        ({"type": "github", "config": {"owner": "a", "repo": "b", "colour": "red"}}, "config.colour"),
        ({"type": "github", "config": {"owner": "a", "repo": "b"}, "schedule": "every minute please"}, "schedule"),
        ({"type": "github", "config": {"owner": "a", "repo": "b"}, "schedule": "* * * * * *"}, "schedule"),
        ({"type": "github", "config": {"owner": "a", "repo": "b"}, "credentials": {"tok": "x"}},
         "credentials.token"),
    ]
    for body, field in cases:
        response = await api.post("/v1/connectors", json=body, headers=tenant.headers(ADMIN))
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error" and error["details"]["field"] == field, (body, error)


async def test_oauth_types_wait_for_authorization_and_custom_api_is_connected(api: Client, tenant: Tenant) -> None:
    linear = await create(api, tenant, type="linear", config={}, credentials=None)
    custom = await create(api, tenant, type="custom_api", display_name="Deploy Monitor", config={}, credentials={})
    assert linear["status"] == "pending_auth" and linear["has_credentials"] is False
    assert custom["status"] == "connected" and custom["display_name"] == "Deploy Monitor"
    push_only = await api.post(f"/v1/connectors/{custom['id']}/sync", headers=tenant.headers(ADMIN))
    assert push_only.status_code == 422 and push_only.json()["error"]["code"] == "sync_not_supported"


async def test_update_pause_resume_and_delete(api: Client, tenant: Tenant) -> None:
    created = await create(api, tenant)
    url = f"/v1/connectors/{created['id']}"

    patched = await api.patch(url, json={"schedule": "0 * * * *", "display_name": "Renamed"},
                              headers={**tenant.headers(ADMIN), "If-Match": '"1"'})
    stale = await api.patch(url, json={"schedule": "5 * * * *"}, headers={**tenant.headers(ADMIN), "If-Match": '"1"'})
    paused = await api.post(f"{url}/pause", headers=tenant.headers(ADMIN))
    sync_while_paused = await api.post(f"{url}/sync", headers=tenant.headers(ADMIN))
    resumed = await api.post(f"{url}/resume", headers=tenant.headers(ADMIN))
    deleted = await api.delete(url, headers=tenant.headers(ADMIN))
    gone = await api.get(url, headers=tenant.headers(ADMIN))

    assert patched.status_code == 200 and patched.json()["schedule"] == "0 * * * *"
    assert patched.json()["display_name"] == "Renamed" and patched.json()["version"] == 2
    assert stale.status_code == 412
    assert paused.json()["status"] == "paused"
    assert sync_while_paused.status_code == 422 and sync_while_paused.json()["error"]["code"] == "invalid_transition"
    assert resumed.json()["status"] == "connected"
    assert deleted.status_code == 204 and gone.status_code == 404


async def test_viewers_read_but_do_not_administer_and_other_workspaces_see_nothing(
        api: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    created = await create(api, tenant)
    viewer_write = await api.post("/v1/connectors", json={"type": "custom_api"}, headers=tenant.headers(Role.VIEWER))
    other = await api.get(f"/v1/connectors/{created['id']}", headers=other_tenant.headers(ADMIN))
    other_sync = await api.post(f"/v1/connectors/{created['id']}/sync", headers=other_tenant.headers(ADMIN))
    malformed = await api.get("/v1/connectors/con_nope", headers=tenant.headers(ADMIN))
    assert viewer_write.status_code == 403
    assert other.status_code == 404 and other_sync.status_code == 404 and malformed.status_code == 404
