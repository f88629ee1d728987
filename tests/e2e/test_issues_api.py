"""The Issues resource through the public API, on real Postgres and NATS with the relay and projector running."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from api.app import create_app
from domain.identity.roles import Role
from projections.issues.view import IssueView
from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]


async def open_issue(api: Client, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    response = await api.post("/v1/issues", json={"title": "Payment gateway timeout", **fields},
                              headers=tenant.headers())
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_created_issue_is_returned_with_its_location_and_version(api: Client, tenant: Tenant) -> None:
    response = await api.post("/v1/issues", json={"title": "Checkout 502", "severity": "p1", "team": "payments"},
                              headers=tenant.headers())

    body = response.json()
    assert response.status_code == 201
    assert response.headers["location"] == f"/v1/issues/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert body["id"].startswith("iss_") and len(body["id"]) == 30
    assert (body["severity"], body["status"], body["stage"], body["source"]) == ("critical", "open", "new", "manual")
    assert body["version"] == 1 and body["resolved_at"] is None


async def test_the_next_get_after_a_create_sees_it_without_waiting(api: Client, tenant: Tenant) -> None:
    created = await open_issue(api, tenant)

    response = await api.get(f"/v1/issues/{created['id']}", headers=tenant.headers())
    listed = await api.get("/v1/issues", headers=tenant.headers())

    assert response.status_code == 200 and response.json() == created
    assert [issue["id"] for issue in listed.json()["data"]] == [created["id"]]


async def test_reads_serve_the_same_issue_json_as_the_command_answered(api: Client, tenant: Tenant) -> None:
    created = await open_issue(api, tenant, metadata={"zone": "eu-1", "attempts": 3, "ratio": 0.25,
                                                      "nested": {"b": [1, "two"], "a": None}},
                               body="Timeouts since 09:00", team="payments", source_created_at="2026-03-01T12:00:00Z")
    updated = await api.patch(f"/v1/issues/{created['id']}", json={"severity": "low"}, headers=tenant.headers())

    one = await api.get(f"/v1/issues/{created['id']}", headers=tenant.headers())
    listed = await api.get("/v1/issues", headers=tenant.headers())

    assert one.status_code == 200 and one.headers["content-type"] == "application/json"
    assert one.json() == updated.json() and listed.json()["data"] == [updated.json()]
    assert one.headers["etag"] == updated.headers["etag"] == '"2"'


async def test_rows_stored_before_documents_existed_are_rendered_with_every_field(
        api: Client, tenant: Tenant, settings: Settings) -> None:
    created = await open_issue(api, tenant, metadata={"zone": "eu-1"}, team="payments")
    with psycopg.connect(settings.database_url, autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        conn.execute("UPDATE issues SET doc = NULL WHERE id = %s", (created["id"],))

    one = (await api.get(f"/v1/issues/{created['id']}", headers=tenant.headers())).json()
    listed = (await api.get("/v1/issues", headers=tenant.headers())).json()["data"]
    found = (await api.get("/v1/issues?q=gateway", headers=tenant.headers())).json()["data"]

    expected = msgspec.convert(created, IssueView)
    assert [msgspec.convert(body, IssueView) for body in (one, *listed, *found)] == [expected] * 3


async def test_same_source_and_external_id_updates_the_existing_issue(api: Client, tenant: Tenant) -> None:
    first = await open_issue(api, tenant, source="jira", external_id="JIRA-1042")

    again = await api.post("/v1/issues", json={"title": "Gateway timeout (edited)", "source": "jira",
                                               "external_id": "JIRA-1042"}, headers=tenant.headers())

    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["title"] == "Gateway timeout (edited)"
    listed = await api.get("/v1/issues", headers=tenant.headers())
    assert listed.json()["page"]["total"] == 1


async def test_patch_changes_fields_and_bumps_the_etag(api: Client, tenant: Tenant) -> None:
    issue = await open_issue(api, tenant)

    response = await api.patch(f"/v1/issues/{issue['id']}", json={"title": "Renamed", "severity": "low",
                                                                   "status": "in_progress"},
                               headers={**tenant.headers(), "If-Match": '"1"'})

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["severity"], response.json()["status"]) == (
        "Renamed", "low", "in_progress")
    assert response.headers["etag"] == '"3"'


async def test_a_stale_if_match_is_412_and_changes_nothing(api: Client, tenant: Tenant) -> None:
    issue = await open_issue(api, tenant)
    await api.patch(f"/v1/issues/{issue['id']}", json={"title": "First"}, headers=tenant.headers())

    response = await api.patch(f"/v1/issues/{issue['id']}", json={"title": "Second"},
                               headers={**tenant.headers(), "If-Match": '"1"'})

    assert response.status_code == 412
    assert response.json()["error"]["code"] == "precondition_failed"
    current = await api.get(f"/v1/issues/{issue['id']}", headers=tenant.headers())
    assert current.json()["title"] == "First"
    assert response.headers["etag"] == current.headers["etag"] == '"2"'
    assert response.json()["error"]["details"] == {"current_version": 2}


async def test_close_then_reopen_sets_and_clears_resolved_at(api: Client, tenant: Tenant) -> None:
    issue = await open_issue(api, tenant)

    closed = await api.post(f"/v1/issues/{issue['id']}/close", headers=tenant.headers())
    reopened = await api.post(f"/v1/issues/{issue['id']}/reopen", headers=tenant.headers())

    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["resolved_at"] is not None
    assert reopened.json()["status"] == "open" and reopened.json()["resolved_at"] is None


async def test_a_closed_issue_refuses_other_transitions_with_422(api: Client, tenant: Tenant) -> None:
    issue = await open_issue(api, tenant)
    await api.post(f"/v1/issues/{issue['id']}/close", headers=tenant.headers())

    response = await api.patch(f"/v1/issues/{issue['id']}", json={"status": "in_progress"},
                               headers=tenant.headers())

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_transition"


async def test_setting_the_current_status_again_is_a_200_no_op(api: Client, tenant: Tenant) -> None:
    issue = await open_issue(api, tenant)

    response = await api.patch(f"/v1/issues/{issue['id']}", json={"status": "open"}, headers=tenant.headers())

    assert response.status_code == 200 and response.json()["version"] == 1


async def test_activity_lists_the_issue_history_newest_first(api: Client, tenant: Tenant) -> None:
    issue = await open_issue(api, tenant)
    await api.post(f"/v1/issues/{issue['id']}/close", headers=tenant.headers())
    await api.post(f"/v1/issues/{issue['id']}/reopen", headers=tenant.headers())

    first = await api.get(f"/v1/issues/{issue['id']}/activity?limit=2", headers=tenant.headers())
    rest = await api.get(f"/v1/issues/{issue['id']}/activity?limit=2&cursor={first.json()['page']['next_cursor']}",
                         headers=tenant.headers())

    assert [entry["type"] for entry in first.json()["data"]] == ["IssueReopened", "IssueClosed"]
    assert [entry["type"] for entry in rest.json()["data"]] == ["IssueOpened"]
    assert first.json()["page"]["total"] == 3 and rest.json()["page"]["has_more"] is False
    assert first.json()["data"][0]["data"] == {"from_status": "closed"}
    opened = rest.json()["data"][0]["data"]
    assert opened["title"] == issue["title"] and opened["severity"] == "medium"
    assert not {"type", "originator_id", "workspace_id", "actor", "occurred_at"} & set(opened)


async def test_comments_are_added_and_listed_oldest_first(api: Client, tenant: Tenant) -> None:
    issue = await open_issue(api, tenant)
    for text in ("first", "second", "third"):
        response = await api.post(f"/v1/issues/{issue['id']}/comments", json={"body": text},
                                  headers=tenant.headers())
        assert response.status_code == 201 and response.json()["id"].startswith("cmt_")

    page = await api.get(f"/v1/issues/{issue['id']}/comments?limit=2", headers=tenant.headers())
    rest = await api.get(f"/v1/issues/{issue['id']}/comments?cursor={page.json()['page']['next_cursor']}",
                         headers=tenant.headers())

    assert [c["body"] for c in page.json()["data"]] == ["first", "second"]
    assert [c["body"] for c in rest.json()["data"]] == ["third"]
    detail = await api.get(f"/v1/issues/{issue['id']}", headers=tenant.headers())
    assert detail.json()["comment_count"] == 3


async def test_bulk_applies_to_each_id_and_reports_each_outcome(api: Client, tenant: Tenant,
                                                                other_tenant: Tenant) -> None:
    mine = [await open_issue(api, tenant) for _ in range(2)]
    theirs = await open_issue(api, other_tenant)

    response = await api.post("/v1/issues/bulk", json={
        "ids": [mine[0]["id"], mine[1]["id"], theirs["id"], "iss_nonsense"], "op": "set_status",
        "value": "resolved"}, headers=tenant.headers())

    results = {r["id"]: r for r in response.json()["results"]}
    assert response.status_code == 200
    assert results[mine[0]["id"]]["ok"] and results[mine[1]["id"]]["ok"]
    assert results[theirs["id"]]["error"]["code"] == "not_found"
    assert results["iss_nonsense"]["error"]["code"] == "not_found"
    listed = await api.get("/v1/issues?status=resolved", headers=tenant.headers())
    assert listed.json()["page"]["total"] == 2


async def test_bulk_refuses_more_than_100_ids(api: Client, tenant: Tenant) -> None:
    response = await api.post("/v1/issues/bulk", json={"ids": ["iss_x"] * 101, "op": "set_team", "value": "a"},
                              headers=tenant.headers())

    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


async def test_filters_narrow_the_list(api: Client, tenant: Tenant) -> None:
    high = await open_issue(api, tenant, severity="high", team="payments", source="pagerduty")
    await open_issue(api, tenant, severity="low", team="search")
    closed = await open_issue(api, tenant, severity="high")
    await api.post(f"/v1/issues/{closed['id']}/close", headers=tenant.headers())

    async def ids(query: str) -> list[str]:
        response = await api.get(f"/v1/issues?{query}", headers=tenant.headers())
        assert response.status_code == 200, response.text
        return [issue["id"] for issue in response.json()["data"]]

    assert await ids("status=open&severity=high") == [high["id"]]
    assert await ids("severity=p2&status=closed") == [closed["id"]]
    assert await ids("team=payments") == [high["id"]]
    assert await ids("source=pagerduty") == [high["id"]]
    assert await ids("stage=new&status=open&severity=low,high") != []
    assert await ids(f"created_after={high['created_at'].replace('+00:00', 'Z')}&status=closed") == [closed["id"]]
    assert await ids("risk_min=1") == []


async def test_q_is_ranked_full_text_search(api: Client, tenant: Tenant) -> None:
    await open_issue(api, tenant, title="Checkout page slow", body="the database timeout appears sometimes")
    best = await open_issue(api, tenant, title="Database timeout on checkout", body="database database timeout")
    await open_issue(api, tenant, title="Unrelated login bug")

    response = await api.get("/v1/issues?q=database timeout", headers=tenant.headers())

    titles = [issue["title"] for issue in response.json()["data"]]
    assert titles[0] == best["title"] and len(titles) == 2


async def test_search_results_page_by_rank_with_cursors(api: Client, tenant: Tenant) -> None:
    for n in range(3):
        await open_issue(api, tenant, title=f"Disk full {n}", body="disk " * (n + 1))
    await open_issue(api, tenant, title="Unrelated login bug")
    seen: list[str] = []
    cursor = None
    while True:
        query = "q=disk&limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.get(f"/v1/issues?{query}", headers=tenant.headers())).json()
        assert page["page"]["total"] == 3
        seen += [issue["title"] for issue in page["data"]]
        cursor = page["page"]["next_cursor"]
        if cursor is None:
            break

    assert seen == ["Disk full 2", "Disk full 1", "Disk full 0"]


async def test_search_combines_with_filters_sorts_and_totals(api: Client, tenant: Tenant) -> None:
    first = await open_issue(api, tenant, title="Disk full on db", severity="high", body="disk disk disk")
    second = await open_issue(api, tenant, title="Disk full on web", severity="high")
    await open_issue(api, tenant, title="Disk full on cache", severity="low")
    await open_issue(api, tenant, title="Login bug", severity="high")

    async def listed(query: str) -> tuple[list[str], int]:
        body = (await api.get(f"/v1/issues?{query}", headers=tenant.headers())).json()
        return [issue["id"] for issue in body["data"]], body["page"]["total"]

    assert await listed("q=disk&severity=high") == ([first["id"], second["id"]], 2)
    assert await listed("q=disk&severity=high&sort=-created_at") == ([second["id"], first["id"]], 2)
    assert await listed("q=disk&severity=high&sort=created_at&limit=1") == ([first["id"]], 2)
    assert (await listed("q=disk"))[1] == 3
    assert await listed("q=nothing-matches-this") == ([], 0)


async def test_filter_values_with_quotes_and_backslashes_are_values_not_sql(api: Client, tenant: Tenant) -> None:
    odd = await open_issue(api, tenant, title="O'Brien's \\share is full", team="o'brien\\'; DROP TABLE issues; --")
    await open_issue(api, tenant, title="plain")

    by_team = await api.get("/v1/issues", params={"team": odd["team"]}, headers=tenant.headers())
    by_text = await api.get("/v1/issues", params={"q": "O'Brien's \\ 'share"}, headers=tenant.headers())

    assert [i["id"] for i in by_team.json()["data"]] == [odd["id"]]
    assert [i["id"] for i in by_text.json()["data"]] == [odd["id"]]
    assert (await api.get("/v1/issues", headers=tenant.headers())).json()["page"]["total"] == 2


async def test_past_the_exact_count_limit_the_total_is_an_estimate_no_lower_than_the_count(
        api: Client, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("projections.issues.queries.TOTAL_EXACT_UP_TO", 2)
    for _ in range(4):
        await open_issue(api, tenant, team="core")

    response = await api.get("/v1/issues?team=core&limit=1", headers=tenant.headers())

    assert response.status_code == 200, response.text
    assert response.json()["page"]["total"] >= 3 and len(response.json()["data"]) == 1


async def test_sorting_and_pages_cover_every_issue_once_even_while_new_ones_arrive(api: Client,
                                                                                     tenant: Tenant) -> None:
    created = [await open_issue(api, tenant, title=f"issue {n}") for n in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        query = "sort=created_at&limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.get(f"/v1/issues?{query}", headers=tenant.headers())).json()
        seen += [issue["id"] for issue in page["data"]]
        if not seen[3:]:
            await open_issue(api, tenant, title="arrived while paging")
        cursor = page["page"]["next_cursor"]
        if cursor is None:
            break

    assert seen[:7] == [issue["id"] for issue in created]
    assert len(seen) == len(set(seen)) == 8


@pytest.mark.parametrize("sort", ["-severity", "severity", "risk_score", "-updated_at"])
async def test_cursor_pages_on_every_sort_key_cover_each_issue_once_in_order(api: Client, tenant: Tenant,
                                                                              sort: str) -> None:
    """The next cursor carries the page's last keyset (integer, timestamp) exactly as its key compares."""
    team = f"paging-{sort}"
    for severity in ("low", "critical", "medium", "high", "critical", "low", "medium"):
        await open_issue(api, tenant, severity=severity, team=team)
    everything = (await api.get(f"/v1/issues?team={team}&sort={sort}&limit=100", headers=tenant.headers())).json()
    seen: list[str] = []
    cursor = None
    for _ in range(10):  # 7 issues: 4 pages; a cursor that does not move on must fail, not loop
        query = f"team={team}&sort={sort}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.get(f"/v1/issues?{query}", headers=tenant.headers())).json()
        assert len(page["data"]) == 2 or page["page"]["next_cursor"] is None
        seen += [issue["id"] for issue in page["data"]]
        cursor = page["page"]["next_cursor"]
        if cursor is None:
            break

    assert seen == [issue["id"] for issue in everything["data"]] and len(set(seen)) == 7


async def test_sort_by_severity_descending(api: Client, tenant: Tenant) -> None:
    for severity in ("low", "critical", "medium", "high"):
        await open_issue(api, tenant, severity=severity)

    response = await api.get("/v1/issues?sort=-severity", headers=tenant.headers())

    assert [i["severity"] for i in response.json()["data"]] == ["critical", "high", "medium", "low"]


async def test_a_tampered_cursor_is_400_malformed_cursor_token(api: Client, tenant: Tenant) -> None:
    for _ in range(3):
        await open_issue(api, tenant)
    page = (await api.get("/v1/issues?limit=1", headers=tenant.headers())).json()
    cursor = page["page"]["next_cursor"]
    tampered = ("A" if cursor[0] != "A" else "B") + cursor[1:]

    response = await api.get(f"/v1/issues?limit=1&cursor={tampered}", headers=tenant.headers())

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "malformed cursor token"


@pytest.mark.parametrize(("body", "field"), [
    ({"title": ""}, "title"),
    ({"title": "x" * 301}, "title"),
    ({"title": "ok", "severity": "urgent"}, "severity"),
    ({"title": "ok", "colour": "red"}, "colour"),
    ({"title": 42}, "title"),
    ({}, "title"),
    ({"title": "ok", "assignee_id": "bob"}, "assignee_id"),
])
async def test_invalid_bodies_are_400_naming_the_field(api: Client, tenant: Tenant, body: dict[str, Any],
                                                       field: str) -> None:
    response = await api.post("/v1/issues", json=body, headers=tenant.headers())

    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "validation_error"
    assert field in str(error["details"])
    assert error["trace_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "status=weird", "sort=title",
                                   "risk_min=-1", "risk_min=50&risk_max=10", "created_after=yesterday"])
async def test_invalid_list_queries_are_400(api: Client, tenant: Tenant, query: str) -> None:
    response = await api.get(f"/v1/issues?{query}", headers=tenant.headers())

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("issue_id", ["nope", "pat_01KV1PX3NR96XJRGD48NNHH431", "iss_01KV1PX3NR96XJRGD48NNHH431",
                                      "iss_ZZZZZZZZZZZZZZZZZZZZZZZZZZ"])
async def test_unknown_or_malformed_ids_are_404(api: Client, tenant: Tenant, issue_id: str) -> None:
    for response in (await api.get(f"/v1/issues/{issue_id}", headers=tenant.headers()),
                     await api.post(f"/v1/issues/{issue_id}/close", headers=tenant.headers()),
                     await api.patch(f"/v1/issues/{issue_id}", json={"title": "x"}, headers=tenant.headers())):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


async def test_another_workspaces_issue_is_404_everywhere(api: Client, tenant: Tenant,
                                                          other_tenant: Tenant) -> None:
    theirs = await open_issue(api, other_tenant)

    reads = [await api.get(f"/v1/issues/{theirs['id']}{suffix}", headers=tenant.headers())
             for suffix in ("", "/activity", "/comments")]
    writes = [await api.patch(f"/v1/issues/{theirs['id']}", json={"title": "mine"}, headers=tenant.headers()),
              await api.post(f"/v1/issues/{theirs['id']}/close", headers=tenant.headers()),
              await api.post(f"/v1/issues/{theirs['id']}/comments", json={"body": "hi"}, headers=tenant.headers())]
    listed = await api.get("/v1/issues", headers=tenant.headers())

    assert {r.status_code for r in reads + writes} == {404}
    assert listed.json()["data"] == []


async def test_reading_needs_issues_read_and_writing_issues_write(api: Client, tenant: Tenant) -> None:
    viewer = tenant.headers(Role.VIEWER)
    read_only = tenant.headers(Role.READ_ONLY)

    assert (await api.get("/v1/issues", headers=viewer)).status_code == 200
    assert (await api.post("/v1/issues", json={"title": "x"}, headers=viewer)).status_code == 403
    assert (await api.get("/v1/issues", headers=read_only)).status_code == 403
    assert (await api.get("/v1/issues")).status_code == 401


async def test_a_narrowed_token_loses_the_scopes_it_did_not_ask_for(api: Client, tenant: Tenant) -> None:
    headers = tenant.headers(Role.OWNER, frozenset({"issues:read"}))

    assert (await api.get("/v1/issues", headers=headers)).status_code == 200
    assert (await api.post("/v1/issues", json={"title": "x"}, headers=headers)).status_code == 403


async def test_an_idempotent_retry_replays_the_first_response(api: Client, tenant: Tenant) -> None:
    headers = {**tenant.headers(), "Idempotency-Key": "7b1c1d0e-create-once"}

    first = await api.post("/v1/issues", json={"title": "Once"}, headers=headers)
    second = await api.post("/v1/issues", json={"title": "Once"}, headers=headers)
    changed = await api.post("/v1/issues", json={"title": "Twice"}, headers=headers)

    assert second.headers.get("idempotency-replayed") == "true" and second.json() == first.json()
    assert changed.status_code == 422 and changed.json()["error"]["code"] == "idempotency_key_reused"
    assert (await api.get("/v1/issues", headers=tenant.headers())).json()["page"]["total"] == 1


async def test_an_oversized_body_is_413(api: Client, tenant: Tenant) -> None:
    response = await api.post("/v1/issues", content=b'{"title": "' + b"x" * 1_100_000 + b'"}',
                              headers={**tenant.headers(), "Content-Type": "application/json"})

    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


async def test_bad_utf8_is_a_clean_400(api: Client, tenant: Tenant) -> None:
    response = await api.post("/v1/issues", content=b'{"title": "\xff\xfe"}',
                              headers={**tenant.headers(), "Content-Type": "application/json"})

    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


async def test_link_and_unlink_pattern_move_the_stage(api: Client, tenant: Tenant) -> None:
    issue = await open_issue(api, tenant)
    pattern_id = "pat_01KV1PX3NR96XJRGD48NNHH431"

    linked = await api.post(f"/v1/issues/{issue['id']}/link-pattern", json={"pattern_id": pattern_id},
                            headers=tenant.headers())
    by_pattern = await api.get(f"/v1/issues?pattern_id={pattern_id}", headers=tenant.headers())
    lower_case = await api.get(f"/v1/issues?pattern_id={pattern_id.lower()}", headers=tenant.headers())
    malformed = await api.get("/v1/issues?pattern_id=nope", headers=tenant.headers())
    unlinked = await api.post(f"/v1/issues/{issue['id']}/unlink-pattern", headers=tenant.headers())

    assert (linked.json()["pattern_id"], linked.json()["stage"]) == (pattern_id, "pattern_found")
    assert [i["id"] for i in by_pattern.json()["data"]] == [i["id"] for i in lower_case.json()["data"]] == [issue["id"]]
    assert malformed.status_code == 400 and malformed.json()["error"]["details"]["field"] == "pattern_id"
    assert unlinked.json()["pattern_id"] is None


async def test_a_ranked_search_ranks_the_most_recent_matches_and_other_sorts_see_every_match(
        settings: Settings, workers: Any, tenant: Tenant) -> None:
    """SEARCH_RANK_WINDOW=3: relevance orders the 3 most recent matches; the oldest, most relevant issue is
    outside that window, and `sort=-created_at` (or a filter) still finds it."""
    windowed = msgspec.structs.replace(settings, search_rank_window=3)
    async with AsyncTestClient(create_app(windowed, configure_logging=False)) as api:
        oldest = await open_issue(api, tenant, title="Disk disk disk full", body="disk disk disk", severity="high")
        newer = [await open_issue(api, tenant, title=f"Node {n} slow", body=f"{'disk ' * n}and more")
                 for n in (1, 2, 3)]
        await open_issue(api, tenant, title="Unrelated login bug")

        async def listed(query: str) -> tuple[list[str], int, bool]:
            body = (await api.get(f"/v1/issues?{query}", headers=tenant.headers())).json()
            return [issue["id"] for issue in body["data"]], body["page"]["total"], body["page"]["has_more"]

        assert await listed("q=disk") == ([newer[2]["id"], newer[1]["id"], newer[0]["id"]], 4, False)
        assert await listed("q=disk&limit=2") == ([newer[2]["id"], newer[1]["id"]], 4, True)
        assert (await listed("q=disk&sort=-created_at"))[0] == [n["id"] for n in reversed(newer)] + [oldest["id"]]
        assert await listed("q=disk&severity=high") == ([oldest["id"]], 1, False)


async def test_a_ranked_search_counts_once_when_few_match_and_estimates_past_the_exact_limit(
        settings: Settings, workers: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact up to the limit (the scan that counts also gives the window); from the limit on, the window is the
    most recent matches still, and the total is at least the count."""
    monkeypatch.setattr("projections.issues.queries.TOTAL_EXACT_UP_TO", 3)
    windowed = msgspec.structs.replace(settings, search_rank_window=2)
    async with AsyncTestClient(create_app(windowed, configure_logging=False)) as api:
        async def ranked(word: str) -> tuple[list[str], int]:
            body = (await api.get(f"/v1/issues?q={word}", headers=tenant.headers())).json()
            return [issue["id"] for issue in body["data"]], body["page"]["total"]

        few = [await open_issue(api, tenant, title=f"Broker {'quorum ' * n}lost") for n in (1, 2, 3)]
        many = [await open_issue(api, tenant, title=f"Cache {'eviction ' * n}storm") for n in (1, 2, 3, 4, 5)]

        assert await ranked("quorum") == ([few[2]["id"], few[1]["id"]], 3)  # exact; the 2 most recent, by rank
        ids, total = await ranked("eviction")
        assert ids == [many[4]["id"], many[3]["id"]] and total >= 4
        assert await ranked("nothingmatches") == ([], 0)
