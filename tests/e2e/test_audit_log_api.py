"""The audit log through the public API: every command leaves an immutable, hash-chained entry."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import AsyncTestClient

from adapters.event_store import EVENTS_TABLE, EventStore
from adapters.postgres import READER_ROLE, WRITER_ROLE
from adapters.settings import Settings
from api.app import create_app
from api.audit import routes as audit_routes
from api.core.rate_limit import WINDOW_SECONDS
from domain.events import Meta
from domain.identity.roles import Role
from domain.identity.user import register_user
from domain.ids import WorkspaceId
from projections.position_waiter import PositionWaiter
from tests.e2e.conftest import TEST_ACTOR, Tenant, Workers
from tests.peer import Peer

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
IP = "203.0.113.9"
PROXY = "10.0.0.2"


@pytest.fixture
async def api(settings: Settings, workers: Workers) -> AsyncIterator[Client]:
    """The app behind a trusted proxy: the client's address (`ip`) is what the proxy forwards."""
    behind_proxy = msgspec.structs.replace(settings, trusted_proxies="10.0.0.0/8")
    async with AsyncTestClient(Peer(create_app(behind_proxy, configure_logging=False), PROXY)) as client:
        yield client


def admin(tenant: Tenant) -> dict[str, str]:
    return tenant.headers(Role.TENANT_ADMIN)


async def command(api: Client, audited: PositionWaiter, method: str, url: str, tenant: Tenant,
                  body: dict[str, Any] | None = None, ip: str = IP, role: Role = Role.ANALYST) -> dict[str, Any]:
    """Send a command as the tenant's owner narrowed to `role`, from `ip`; wait until the audit projection has it."""
    response = await api.request(method, url, json=body, headers={**tenant.headers(role), "X-Forwarded-For": ip})
    assert response.status_code in (200, 201), response.text
    assert await audited.wait("audit", int(response.headers["x-causeloop-position"]), 10.0)
    result: dict[str, Any] = response.json()
    return result


async def issue_history(api: Client, audited: PositionWaiter, tenant: Tenant) -> str:
    """Open, edit and close one issue; returns its id."""
    issue = await command(api, audited, "POST", "/v1/issues", tenant, {"title": "Disk full", "severity": "high"})
    await command(api, audited, "PATCH", f"/v1/issues/{issue['id']}", tenant, {"title": "Disk full on db-1"})
    await command(api, audited, "POST", f"/v1/issues/{issue['id']}/close", tenant)
    return str(issue["id"])


async def entries(api: Client, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = await api.get("/v1/audit-log", params=params, headers=admin(tenant))
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_issue_commands_leave_entries_with_action_actor_target_ip_and_metadata(
        api: Client, tenant: Tenant, audited: PositionWaiter) -> None:
    issue_id = await issue_history(api, audited, tenant)

    found = await entries(api, tenant, action="issue.")

    assert [e["action"] for e in found] == ["issue.closed", "issue.updated", "issue.created"]
    assert [e["category"] for e in found] == ["update", "update", "create"]
    assert {e["target"]["id"] for e in found} == {issue_id} and {e["target"]["type"] for e in found} == {"issue"}
    assert {(e["actor"]["kind"], e["actor"]["id"]) for e in found} == {("user", tenant.user_id)}
    assert {e["ip"] for e in found} == {IP}
    assert found[1]["metadata"] == {"title": "Disk full on db-1"}
    assert found[2]["metadata"]["severity"] == "high"
    assert found[0]["seq"] > found[1]["seq"] > found[2]["seq"]
    assert all(e["id"].startswith("aud_") and len(e["hash"]) == 64 for e in found)


async def test_filters_narrow_by_action_category_actor_text_and_date(
        api: Client, tenant: Tenant, audited: PositionWaiter) -> None:
    await issue_history(api, audited, tenant)
    created = await entries(api, tenant, action="issue.created")
    day = created[0]["occurred_at"][:10]

    assert [e["action"] for e in await entries(api, tenant, category="update", action="issue.")] == [
        "issue.closed", "issue.updated"]
    assert [e["action"] for e in await entries(api, tenant, q="db-1")] == ["issue.updated"]
    assert [e["action"] for e in await entries(api, tenant, q="closed")] == ["issue.closed"]
    assert len(await entries(api, tenant, actor_id=tenant.user_id, action="issue.")) == 3
    assert await entries(api, tenant, actor_id="usr_01KV1PX3NR96XJRGD48NNHH499") == []
    assert len(await entries(api, tenant, action="issue.", **{"from": day, "to": day})) == 3
    assert len(await entries(api, tenant, action="issue.", to=created[0]["occurred_at"])) == 1
    assert await entries(api, tenant, **{"from": "2999-01-01"}) == []
    assert await entries(api, tenant, to="2000-01-01") == []


async def test_bad_filter_values_are_validation_errors_naming_the_field(api: Client, tenant: Tenant) -> None:
    for params, field in (({"category": "mutate"}, "category"), ({"from": "yesterday"}, "from"),
                          ({"to": "2026-13-01"}, "to"), ({"cursor": "forged.cursor"}, "cursor")):
        response = await api.get("/v1/audit-log", params=params, headers=admin(tenant))

        assert response.status_code == 400, params
        assert response.json()["error"]["details"]["field"] == field


async def test_pages_run_newest_first_without_overlap(api: Client, tenant: Tenant, audited: PositionWaiter) -> None:
    for _ in range(2):
        await issue_history(api, audited, tenant)
    everything = await entries(api, tenant, action="issue.", limit=100)

    first = await api.get("/v1/audit-log", params={"action": "issue.", "limit": 4}, headers=admin(tenant))
    second = await api.get("/v1/audit-log", params={"action": "issue.", "limit": 4,
                                                    "cursor": first.json()["page"]["next_cursor"]},
                           headers=admin(tenant))

    assert first.json()["page"]["total"] == 6 and first.json()["page"]["has_more"] is True
    assert [e["id"] for e in first.json()["data"] + second.json()["data"]] == [e["id"] for e in everything]
    assert second.json()["page"] == {"next_cursor": None, "has_more": False, "total": 6}


async def test_csv_export_streams_every_matching_entry_page_after_page(
        api: Client, tenant: Tenant, audited: PositionWaiter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_routes, "EXPORT_PAGE", 1)  # two entries: the export must read three pages
    issue = await command(api, audited, "POST", "/v1/issues", tenant, {"title": "=HYPERLINK(\"http://x\")"})
    await command(api, audited, "POST", f"/v1/issues/{issue['id']}/close", tenant)

    response = await api.get("/v1/audit-log", params={"action": "issue.", "limit": 1},
                             headers={**admin(tenant), "Accept": "text/csv"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8", response.text[:300]
    assert response.headers["content-disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["action"] for row in rows] == ["issue.closed", "issue.created"]  # all of them, not one page
    assert rows[1]["ip"] == IP and rows[1]["actor_id"] == tenant.user_id and rows[1]["target_id"] == issue["id"]
    assert '"title":"=HYPERLINK' in rows[1]["metadata"]
    assert all(not value.startswith(("=", "+", "-", "@")) for row in rows for value in row.values())


async def test_csv_quotes_a_cell_that_starts_like_a_formula(
        api: Client, tenant: Tenant, audited: PositionWaiter) -> None:
    await command(api, audited, "PATCH", "/v1/users/me", tenant, {"name": "=cmd|' /C calc'!A0"})
    await command(api, audited, "POST", "/v1/issues", tenant, {"title": "x"})

    exported = await api.get("/v1/audit-log", params={"action": "issue.created"},
                             headers={**admin(tenant), "Accept": "text/csv"})

    assert exported.status_code == 200
    assert [row["actor_name"] for row in csv.DictReader(io.StringIO(exported.text))] == ["'=cmd|' /C calc'!A0"]


async def test_a_forwarded_address_from_an_untrusted_peer_is_neither_recorded_nor_the_rate_limit_key(
        settings: Settings, workers: Workers, tenant: Tenant, audited: PositionWaiter) -> None:
    peer, forged = "198.51.100.20", f"2001:db8::{uuid.uuid4().hex[:4]}"
    async with AsyncTestClient(Peer(create_app(settings, configure_logging=False), peer)) as direct:
        await command(direct, audited, "POST", "/v1/issues", tenant, {"title": "x"}, ip=forged)
        found = await entries(direct, tenant, action="issue.created")

    assert [e["ip"] for e in found] == [peer]
    window = int(time.time() // WINDOW_SECONDS) * WINDOW_SECONDS
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}") as conn:
        keys = {row[0] for row in conn.execute("SELECT client_key FROM rate_limit_windows WHERE window_start >= %s",
                                               (window - WINDOW_SECONDS,))}
    assert peer in keys and forged not in keys


async def test_reading_the_audit_log_needs_the_audit_read_scope(api: Client, tenant: Tenant) -> None:
    assert (await api.get("/v1/audit-log", headers=tenant.headers(Role.ANALYST))).status_code == 403
    assert (await api.get("/v1/audit-log/verify", headers=tenant.headers(Role.ANALYST))).status_code == 403
    assert (await api.get("/v1/audit-log", headers=tenant.headers(Role.TENANT_ADMIN))).status_code == 200
    assert (await api.get("/v1/audit-log", headers=tenant.headers(Role.SECURITY_ADMIN))).status_code == 200
    assert (await api.get("/v1/audit-log")).status_code == 401


async def test_a_workspace_never_sees_another_workspaces_entries(
        api: Client, tenant: Tenant, other_tenant: Tenant, audited: PositionWaiter) -> None:
    await issue_history(api, audited, tenant)

    theirs = await entries(api, other_tenant, limit=100)
    verdict = (await api.get("/v1/audit-log/verify", headers=admin(other_tenant))).json()

    assert not [e for e in theirs if e["actor"]["id"] == tenant.user_id]
    assert verdict["entries"] == len(theirs)


async def test_no_route_edits_or_deletes_an_entry(api: Client, tenant: Tenant, audited: PositionWaiter) -> None:
    await command(api, audited, "POST", "/v1/issues", tenant, {"title": "x"})
    entry = (await entries(api, tenant, action="issue.created"))[0]

    for method in ("DELETE", "PATCH", "PUT", "POST"):
        response = await api.request(method, "/v1/audit-log", headers=admin(tenant), json={})
        assert response.status_code == 405, method
    for method in ("DELETE", "PATCH", "PUT"):
        response = await api.request(method, f"/v1/audit-log/{entry['id']}", headers=admin(tenant), json={})
        assert response.status_code in (404, 405), method
    assert (await entries(api, tenant, action="issue.created")) == [entry]


def _as_role(settings: Settings, role: str, workspace_id: str, statement: str) -> None:
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}") as conn:
        conn.execute("SELECT set_config('role', %s, true), set_config('causeloop.workspace_id', %s, true)",
                     (role, workspace_id))
        conn.execute(statement)


async def test_neither_the_reader_nor_the_writer_role_can_update_or_delete_an_entry(
        api: Client, settings: Settings, tenant: Tenant, audited: PositionWaiter) -> None:
    await command(api, audited, "POST", "/v1/issues", tenant, {"title": "x"})

    for role in (READER_ROLE, WRITER_ROLE):
        for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                _as_role(settings, role, tenant.workspace_id, statement)
    assert len(await entries(api, tenant, action="issue.created")) == 1


async def test_verify_proves_the_chain_and_finds_a_tampered_entry(
        api: Client, settings: Settings, tenant: Tenant, audited: PositionWaiter) -> None:
    await issue_history(api, audited, tenant)
    everything = await entries(api, tenant, limit=100)
    edited = next(e for e in everything if e["action"] == "issue.updated")

    intact = (await api.get("/v1/audit-log/verify", headers=admin(tenant))).json()
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}") as conn:
        conn.execute("SET LOCAL session_replication_role = replica")  # superuser: row triggers stay silent
        conn.execute("UPDATE audit_log SET metadata = '{\"title\": \"nothing to see\"}'"
                     " WHERE workspace_id = %s AND seq = %s", (tenant.workspace_id, edited["seq"]))
    broken = (await api.get("/v1/audit-log/verify", headers=admin(tenant))).json()

    assert intact == {"ok": True, "entries": len(everything), "first_seq": 1, "last_seq": everything[0]["seq"],
                      "head_hash": everything[0]["hash"], "broken_at": None, "complete": True,
                      "parked_positions": []}
    assert broken["ok"] is False and broken["broken_at"] == edited["seq"]


async def test_verify_says_the_chain_is_incomplete_while_one_of_its_events_is_parked(
        api: Client, tenant: Tenant, other_tenant: Tenant, audited: PositionWaiter,
        identity_store: EventStore) -> None:
    await issue_history(api, audited, tenant)
    await issue_history(api, audited, other_tenant)
    # Only the audit log refuses this one: its `ip` column is text, which cannot hold NUL (the identity read
    # model does not keep the address). Written straight into the store: the API would never accept it.
    user = register_user(user_id=uuid.uuid4(), email=f"nul-{uuid.uuid4().hex[:8]}@example.test",
                         meta=Meta(workspace_id=WorkspaceId(tenant.workspace_id), actor=TEST_ACTOR,
                                   now=datetime.now(UTC), client_ip="203.0.113.\x00"))
    (parked,) = await asyncio.to_thread(identity_store.append, [user])
    await command(api, audited, "POST", "/v1/issues", tenant, {"title": "after the parked one"})

    verdict = (await api.get("/v1/audit-log/verify", headers=admin(tenant))).json()
    elsewhere = (await api.get("/v1/audit-log/verify", headers=admin(other_tenant))).json()

    assert (verdict["ok"], verdict["complete"], verdict["parked_positions"]) == (True, False, [parked])
    assert verdict["entries"] == len(await entries(api, tenant, limit=100))
    assert (elsewhere["ok"], elsewhere["complete"], elsewhere["parked_positions"]) == (True, True, [])


def _user_name(settings: Settings, user_id: str) -> str:
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}") as conn:
        row = conn.execute("SELECT name FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return str(row[0])


async def test_the_actor_name_comes_from_the_users_read_model_and_is_searchable(
        api: Client, settings: Settings, tenant: Tenant, audited: PositionWaiter) -> None:
    await command(api, audited, "POST", "/v1/issues", tenant, {"title": "x"})
    name = _user_name(settings, tenant.user_id)

    created = await entries(api, tenant, action="issue.created")
    by_name = await entries(api, tenant, q=name, category="create", action="issue.")
    provisioned = await entries(api, tenant, action="workspace.created")

    assert created[0]["actor"] == {"kind": "user", "id": tenant.user_id, "name": name}
    assert [e["id"] for e in by_name] == [created[0]["id"]]
    assert provisioned[0]["actor"] == {"kind": "system", "id": "e2e-tests", "name": None}


async def caught_up(settings: Settings, audited: PositionWaiter) -> None:
    """Wait until the audit projection has every event stored so far (it reads them all)."""
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}") as conn:
        row = conn.execute(f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}").fetchone()
    assert row is not None and await audited.wait("audit", int(row[0]), 10.0)


async def test_identity_events_are_audited_too(
        api: Client, settings: Settings, tenant: Tenant, audited: PositionWaiter) -> None:
    tenant.member_headers(Role.VIEWER)
    await caught_up(settings, audited)

    added = await entries(api, tenant, action="member.added")

    assert {(e["category"], e["target"]["type"]) for e in added} == {("create", "member")}
    assert tenant.user_id in {e["target"]["id"] for e in added} and len(added) == 2
    assert {e["metadata"]["role"] for e in added} == {"owner", "viewer"}


async def test_settings_changes_are_workspace_settings_updated_entries(
        api: Client, tenant: Tenant, audited: PositionWaiter) -> None:
    await command(api, audited, "PATCH", "/v1/settings/ai", tenant, {"auto_link": False, "proof_window_days": 45},
                  role=Role.TENANT_ADMIN)

    found = await entries(api, tenant, action="workspace.settings.updated")

    assert len(found) == 1
    assert (found[0]["category"], found[0]["target"], found[0]["ip"]) == (
        "update", {"type": "workspace", "id": tenant.workspace_id}, IP)
    assert found[0]["metadata"] == {"auto_link": False, "proof_window_days": 45, "section": "ai"}
