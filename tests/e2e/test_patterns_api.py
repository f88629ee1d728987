"""Patterns end to end: issues created through the API are grouped by the pattern-detection worker (consuming
JetStream beside the relay and projectors), and the patterns, members, frequency, merges, unlinks and similar
issues are served by the API. Replaying the detector and rebuilding the read model give the same patterns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from adapters.event_store import EventStore
from adapters.settings import Settings
from commands.patterns import pattern_stream
from domain.identity.roles import Role
from domain.ids import render
from domain.patterns.detector import Detector
from tests.e2e.conftest import Tenant, Workers, event_store
from tests.e2e.detector_support import DetectorThread
from tests.e2e.polling import eventually
from workers.operations import rebuild
from workers.pattern_detector import replay

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
T = TypeVar("T")


@pytest.fixture(scope="module")
def detector(settings: Settings, workers: Workers) -> Iterator[DetectorThread]:
    with DetectorThread(settings) as running:
        yield running


async def create(api: Client, tenant: Tenant, title: str, **fields: Any) -> dict[str, Any]:
    response = await api.post("/v1/issues", json={"title": title, **fields}, headers=tenant.headers())
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def assigned(api: Client, tenant: Tenant, issue_id: str, not_in: str | None = None) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = (await api.get(f"/v1/issues/{issue_id}", headers=tenant.headers())).json()
        pattern_id = body["pattern_id"]
        if pattern_id is None or pattern_id == not_in or body["analysis"] is None:
            return None
        members = (await api.get(f"/v1/patterns/{pattern_id}/members", headers=tenant.headers())).json()
        return body if any(m["issue_id"] == issue_id for m in members["data"]) else None

    return await eventually(probe)


TIMEOUT = "Timeout calling payments-api after {}ms for order {}"


async def test_issues_are_grouped_into_patterns_with_explanations(api: Client, tenant: Tenant,
                                                                  detector: DetectorThread) -> None:
    first = await create(api, tenant, TIMEOUT.format(3000, 101), severity="high",
                         metadata={"service": "checkout", "domain": "payments"})
    second = await create(api, tenant, TIMEOUT.format(2500, 202), metadata={"service": "checkout"})
    other = await create(api, tenant, "Disk full on volume /var/lib/postgresql", severity="critical",
                         metadata={"service": "db"})

    one = await assigned(api, tenant, first["id"])
    two = await assigned(api, tenant, second["id"])
    three = await assigned(api, tenant, other["id"])

    assert one["pattern_id"] == two["pattern_id"] != three["pattern_id"]
    assert (two["stage"], three["stage"]) == ("in_loop", "pattern_found")

    async def refreshed() -> dict[str, Any] | None:  # the second issue made the first's analysis stale
        body: dict[str, Any] = (await api.get(f"/v1/issues/{first['id']}", headers=tenant.headers())).json()
        return body if body["stage"] == "in_loop" else None

    one = await eventually(refreshed)
    assert "2 issues in the pattern" in one["analysis"]["contributing_factors"]
    assert one["analysis"]["root_cause"].startswith("Recurring failure pattern")
    assert 0 < one["risk_score"] <= 100 and three["risk_score"] > one["risk_score"]  # critical vs high
    assert two["analysis"]["model"] == "causeloop-grouping-v1" and two["analysis"]["confidence"] == 1.0
    assert two["analysis"]["root_cause"].startswith("Recurring failure pattern: Timeout calling payments-api")
    assert "service: checkout" in two["analysis"]["contributing_factors"]
    pattern = (await api.get(f"/v1/patterns/{one['pattern_id']}", headers=tenant.headers())).json()
    assert pattern["issue_count"] == 2 and pattern["status"] == "active"
    assert pattern["fingerprint"]["service"] == "checkout" and pattern["fingerprint"]["domain"] == "payments"
    assert 0 < pattern["risk_score"] <= 100 and pattern["first_seen_at"] and pattern["last_seen_at"]
    members = (await api.get(f"/v1/patterns/{one['pattern_id']}/members", headers=tenant.headers())).json()
    methods = {m["issue_id"]: (m["match_method"], m["similarity"]) for m in members["data"]}
    assert methods == {first["id"]: ("new", 1.0), second["id"]: ("fingerprint", 1.0)}
    single = (await api.get(f"/v1/patterns/{three['pattern_id']}", headers=tenant.headers())).json()
    assert single["issue_count"] == 1 and single["status"] == "emerging"

    listed = (await api.get("/v1/patterns?sort=-issue_count", headers=tenant.headers())).json()
    assert [p["id"] for p in listed["data"]] == [one["pattern_id"], three["pattern_id"]]
    assert listed["page"]["total"] == 2
    by_domain = (await api.get("/v1/patterns?domain=payments", headers=tenant.headers())).json()
    assert [p["id"] for p in by_domain["data"]] == [one["pattern_id"]]
    emerging = (await api.get("/v1/patterns?status=emerging", headers=tenant.headers())).json()
    assert [p["id"] for p in emerging["data"]] == [three["pattern_id"]]

    frequency = (await api.get(f"/v1/patterns/{one['pattern_id']}/frequency?window=7d",
                               headers=tenant.headers())).json()
    assert len(frequency["data"]) == 7 and frequency["total"] == 2 and frequency["data"][-1]["count"] == 2
    bad = await api.get(f"/v1/patterns/{one['pattern_id']}/frequency?window=8d", headers=tenant.headers())
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "window"


async def test_template_match_attaches_a_variant_and_similar_lists_earlier_issues(
        api: Client, tenant: Tenant, detector: DetectorThread) -> None:
    first = await create(api, tenant, "Invalid user alice from 10.0.0.1 on gateway port", metadata={"service": "ssh"})
    second = await create(api, tenant, "Invalid user bob from 10.0.0.7 on gateway port", metadata={"service": "ssh"})

    one = await assigned(api, tenant, first["id"])
    two = await assigned(api, tenant, second["id"])

    assert one["pattern_id"] == two["pattern_id"]
    members = (await api.get(f"/v1/patterns/{one['pattern_id']}/members", headers=tenant.headers())).json()
    match = next(m for m in members["data"] if m["issue_id"] == second["id"])
    assert match["match_method"] == "template" and 0.8 <= match["similarity"] < 1
    pattern = (await api.get(f"/v1/patterns/{one['pattern_id']}", headers=tenant.headers())).json()
    assert pattern["template"] == "Invalid user <*> from <*> on gateway port"
    similar = (await api.get(f"/v1/issues/{second['id']}/similar?earlier_only=true",
                             headers=tenant.headers())).json()
    assert [s["issue_id"] for s in similar] == [first["id"]] and 0 < similar[0]["similarity"] <= 1
    later = (await api.get(f"/v1/issues/{first['id']}/similar", headers=tenant.headers())).json()
    assert [(s["issue_id"], s["earlier"]) for s in later] == [(second["id"], False)]
    none_earlier = (await api.get(f"/v1/issues/{first['id']}/similar?earlier_only=true",
                                  headers=tenant.headers())).json()
    assert none_earlier == []


async def test_merge_is_remembered_and_unlink_is_respected(api: Client, tenant: Tenant,
                                                           detector: DetectorThread) -> None:
    cause = await create(api, tenant, "Connection pool exhausted in orders-db", metadata={"service": "orders"})
    symptom = await create(api, tenant, "Checkout latency above budget", metadata={"service": "orders"})
    target = (await assigned(api, tenant, cause["id"]))["pattern_id"]
    source = (await assigned(api, tenant, symptom["id"]))["pattern_id"]
    assert target != source

    renamed = await api.patch(f"/v1/patterns/{target}", json={"name": "Orders DB pool", "tags": ["db"]},
                              headers=tenant.headers())
    assert renamed.status_code == 200 and renamed.json()["name"] == "Orders DB pool"
    assert renamed.json()["tags"] == ["db"]
    merged = await api.post(f"/v1/patterns/{target}/merge", json={"source_pattern_id": source},
                            headers=tenant.headers())
    assert merged.status_code == 200, merged.text
    assert merged.json()["issue_count"] == 2
    gone = (await api.get("/v1/patterns", headers=tenant.headers())).json()
    assert source not in [p["id"] for p in gone["data"]]

    again = await create(api, tenant, "Checkout latency above budget", metadata={"service": "orders"})
    assert (await assigned(api, tenant, again["id"]))["pattern_id"] == target  # the must-link

    unlinked = await api.post(f"/v1/issues/{again['id']}/unlink-pattern", headers=tenant.headers())
    assert unlinked.status_code == 200
    regrouped = await assigned(api, tenant, again["id"], not_in=target)
    assert regrouped["pattern_id"] not in (target, source)  # the cannot-link: grouped anew, elsewhere
    assert (await api.get(f"/v1/patterns/{target}", headers=tenant.headers())).json()["issue_count"] == 2


async def test_unknown_and_malformed_ids_are_not_found(api: Client, tenant: Tenant) -> None:
    for path in ("/v1/patterns/nope", f"/v1/patterns/{render('pat', pattern_stream('x', 'y'))}",
                 "/v1/patterns/nope/members", "/v1/issues/nope/similar"):
        response = await api.get(path, headers=tenant.headers())
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def _on_a_thread(work: Callable[[], T]) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


def _snapshot(settings: Settings, workspace_id: str) -> tuple[list[Any], list[Any]]:
    with psycopg.connect(settings.database_url, autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        patterns = conn.execute(
            "SELECT id, name, status, fingerprint, template, tags, issue_count, first_seen_at, last_seen_at,"
            " services, merged_into, version FROM patterns WHERE workspace_id = %s ORDER BY id",
            (workspace_id,)).fetchall()
        members = conn.execute(
            "SELECT pattern_id, issue_id, method, similarity FROM pattern_members WHERE workspace_id = %s"
            " ORDER BY pattern_id, issue_id", (workspace_id,)).fetchall()
    return patterns, members


async def test_patterns_are_a_pure_function_of_the_event_history(api: Client, tenant: Tenant,
                                                                 settings: Settings,
                                                                 detector: DetectorThread) -> None:
    titles = [TIMEOUT.format(100 * i, i) for i in range(4)] + ["Disk full on /data", "Disk full on /logs",
                                                                 "Certificate expired for api.example.com"]
    created = [await create(api, tenant, title, metadata={"service": "edge"}) for title in titles]
    recorded = {issue["id"]: (await assigned(api, tenant, issue["id"]))["pattern_id"] for issue in created}

    with event_store(settings) as store:
        history = _on_a_thread(lambda: _history(store, tenant.workspace_id))
    fresh = Detector()
    assert replay(fresh, history) == []  # every decision the replay makes is already recorded
    replayed = {issue_id: render("pat", pattern_stream(tenant.workspace_id, key))
                for issue_id in recorded
                if (key := fresh.pattern_of(tenant.workspace_id, issue_id)) is not None}
    assert replayed == recorded

    before = _snapshot(settings, tenant.workspace_id)
    report = _on_a_thread(lambda: rebuild(settings, "patterns"))
    assert report.startswith("rebuilt patterns") and "parked" not in report
    assert _snapshot(settings, tenant.workspace_id) == before


def _history(store: EventStore, workspace_id: str) -> list[tuple[int, object]]:
    events: list[tuple[int, object]] = []
    after = 0
    while page := store.read(after, 1000):
        events += [(p, e) for p, e in page if e.workspace_id == workspace_id and e.category in ("issue", "pattern")]
        after = page[-1][0]
    return events


async def test_reanalyze_regroups_with_what_the_detector_knows_now(api: Client, tenant: Tenant,
                                                                  detector: DetectorThread) -> None:
    issue = await create(api, tenant, "Cache stampede on catalog keys", metadata={"service": "catalog"})
    before = (await assigned(api, tenant, issue["id"]))["pattern_id"]

    same = await api.post(f"/v1/issues/{issue['id']}/reanalyze", json={"tier": "fast"}, headers=tenant.headers())
    assert same.status_code == 202 and same.json() == {"issue_id": issue["id"], "tier": "fast", "status": "queued"}
    # `analyzing` from the request until the detector's answer (the fold: tests/projections/test_issue_view_stages.py);
    # the detector may answer before a read here, so the issue's history shows the two steps in order.
    async def answered() -> list[str] | None:
        activity = (await api.get(f"/v1/issues/{issue['id']}/activity?limit=100", headers=tenant.headers())).json()
        kinds = [entry["type"] for entry in reversed(activity["data"])]  # oldest first
        started = kinds.index("IssueReanalysisStarted") if "IssueReanalysisStarted" in kinds else None
        return kinds if started is not None and "IssueAnalyzed" in kinds[started:] else None

    await eventually(answered)
    written_back = (await api.get(f"/v1/issues/{issue['id']}", headers=tenant.headers())).json()
    assert written_back["stage"] in ("pattern_found", "in_loop") and written_back["pattern_id"] == before
    assert written_back["analysis"]["root_cause"]
    bad = await api.post(f"/v1/issues/{issue['id']}/reanalyze", json={"tier": "slow"}, headers=tenant.headers())
    assert bad.status_code == 400
    missing = await api.post(f"/v1/issues/{render('iss', pattern_stream('a', 'b'))}/reanalyze", json={},
                             headers=tenant.headers())
    assert missing.status_code == 404

    unlinked = await api.post(f"/v1/issues/{issue['id']}/unlink-pattern", headers=tenant.headers())
    assert unlinked.status_code == 200
    moved = (await assigned(api, tenant, issue["id"], not_in=before))["pattern_id"]
    again = await api.post(f"/v1/issues/{issue['id']}/reanalyze", json={}, headers=tenant.headers())
    assert again.status_code == 202
    later = await create(api, tenant, "Cache stampede on catalog keys", metadata={"service": "catalog"})
    assert (await assigned(api, tenant, later["id"]))["pattern_id"] == moved  # the re-run changed nothing
    issue_now = (await api.get(f"/v1/issues/{issue['id']}", headers=tenant.headers())).json()
    assert issue_now["pattern_id"] == moved


async def test_a_users_link_moves_the_issue_between_member_lists(api: Client, tenant: Tenant,
                                                                 detector: DetectorThread) -> None:
    a = await create(api, tenant, "Kafka consumer lag on billing topic", metadata={"service": "billing"})
    b = await create(api, tenant, "Invoice PDF rendering crashed", metadata={"service": "billing"})
    target = (await assigned(api, tenant, a["id"]))["pattern_id"]
    old = (await assigned(api, tenant, b["id"]))["pattern_id"]

    linked = await api.post(f"/v1/issues/{b['id']}/link-pattern", json={"pattern_id": target},
                            headers=tenant.headers())
    assert linked.status_code == 200

    async def moved() -> dict[str, Any] | None:
        members = (await api.get(f"/v1/patterns/{target}/members", headers=tenant.headers())).json()["data"]
        return next((m for m in members if m["issue_id"] == b["id"]), None)

    member = await eventually(moved)
    assert member["match_method"] == "manual" and member["similarity"] == 1.0
    assert (await api.get(f"/v1/patterns/{old}", headers=tenant.headers())).json()["issue_count"] == 0


async def test_a_pattern_created_by_hand_takes_the_issues_it_names(api: Client, tenant: Tenant,
                                                                   detector: DetectorThread) -> None:
    issue = await create(api, tenant, "Nightly export job stalls", metadata={"service": "reports"})
    before = (await assigned(api, tenant, issue["id"]))["pattern_id"]

    created = await api.post("/v1/patterns", json={
        "name": "Export stalls", "status": "active", "tags": ["reports"], "risk_score": 70, "confidence": 0.9,
        "fingerprint": {"domain": "reporting", "error_signature": "ExportTimeout", "extra": {"x": 1}},
        "issue_ids": [issue["id"], issue["id"]]}, headers=tenant.headers())
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/v1/patterns/{body['id']}"
    assert (body["name"], body["status"], body["tags"]) == ("Export stalls", "active", ["reports"])
    assert body["fingerprint"]["domain"] == "reporting" and body["fingerprint"]["error_signature"] == "ExportTimeout"
    assert (await api.get(f"/v1/issues/{issue['id']}", headers=tenant.headers())).json()["pattern_id"] == body["id"]

    async def member() -> dict[str, Any] | None:
        found = (await api.get(f"/v1/patterns/{body['id']}/members", headers=tenant.headers())).json()["data"]
        return found[0] if found else None

    assert (await eventually(member))["match_method"] == "manual"
    assert (await api.get(f"/v1/patterns/{before}", headers=tenant.headers())).json()["issue_count"] == 0

    empty = await api.post("/v1/patterns", json={"name": "Hand-made", "risk_score": 70, "confidence": 0.9},
                           headers=tenant.headers())
    assert empty.status_code == 201
    assert (empty.json()["risk_score"], empty.json()["confidence"], empty.json()["issue_count"]) == (70, 0.9, 0)
    unknown = await api.post("/v1/patterns", json={"name": "x", "issue_ids": [render("iss", pattern_stream("a", "b"))]},
                             headers=tenant.headers())
    assert unknown.status_code == 404
    blank = await api.post("/v1/patterns", json={"name": "   "}, headers=tenant.headers())
    assert blank.status_code == 400


async def test_without_auto_link_the_same_failure_is_suggested_and_a_user_confirms_it(
        api: Client, tenant: Tenant, detector: DetectorThread) -> None:
    turned_off = await api.patch("/v1/settings/ai", json={"auto_link": False},
                                 headers=tenant.headers(Role.TENANT_ADMIN))
    assert turned_off.status_code == 200 and turned_off.json()["auto_link"] is False
    first = await create(api, tenant, TIMEOUT.format(3000, 101), metadata={"service": "checkout"})
    found = (await assigned(api, tenant, first["id"]))["pattern_id"]
    second = await create(api, tenant, TIMEOUT.format(2500, 202), metadata={"service": "checkout"})
    own = (await assigned(api, tenant, second["id"]))["pattern_id"]

    assert own != found
    [member] = (await api.get(f"/v1/patterns/{own}/members", headers=tenant.headers())).json()["data"]
    assert (member["issue_id"], member["match_method"]) == (second["id"], "new")
    assert (member["suggested_pattern_id"], member["suggested_similarity"]) == (found, 1.0)

    confirmed = await api.post(f"/v1/issues/{second['id']}/link-pattern", json={"pattern_id": found},
                               headers=tenant.headers())
    assert confirmed.status_code == 200

    async def joined() -> list[str] | None:
        members = (await api.get(f"/v1/patterns/{found}/members", headers=tenant.headers())).json()["data"]
        ids = sorted(m["issue_id"] for m in members)
        return ids if len(ids) == 2 else None

    assert await eventually(joined) == sorted([first["id"], second["id"]])
    assert (await api.get(f"/v1/patterns/{own}", headers=tenant.headers())).json()["issue_count"] == 0
