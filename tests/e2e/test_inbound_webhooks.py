"""Inbound webhooks through the public API: signed over the raw bytes, fail closed, replays ingested once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from domain.identity.roles import Role
from tests.e2e.conftest import Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
Client = AsyncTestClient  # type: ignore[type-arg]
ADMIN = Role.TENANT_ADMIN


async def connector(api: Client, tenant: Tenant, kind: str = "github", secret: bool = True) -> tuple[str, str]:
    config = {"owner": "acme", "repo": "web"} if kind == "github" else {}
    created = await api.post("/v1/connectors", json={"type": kind, "config": config, "credentials":
                                                     {"token": "t"} if kind == "github" else {}},
                             headers=tenant.headers(ADMIN))
    assert created.status_code == 201, created.text
    connector_id: str = created.json()["id"]
    if not secret:
        return connector_id, ""
    rotated = await api.post(f"/v1/connectors/{connector_id}/signing-secret", headers=tenant.headers(ADMIN))
    assert rotated.status_code == 201, rotated.text
    value: str = rotated.json()["signing_secret"]
    return connector_id, value


def github_event(number: int, title: str = "Checkout fails") -> bytes:
    return json.dumps({"action": "opened", "issue": {
        "number": number, "title": title, "body": "trace", "state": "open", "labels": [{"name": "p1"}],
        "html_url": f"https://github.com/acme/web/issues/{number}", "created_at": "2026-11-01T00:00:00Z"},
        "repository": {"full_name": "acme/web"}}).encode()


def sign(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


async def deliver(api: Client, connector_id: str, raw: bytes, **headers: str) -> Any:
    return await api.post(f"/v1/webhooks/inbound/{connector_id}", content=raw,
                          headers={"Content-Type": "application/json", **headers})


async def github_issues(api: Client, tenant: Tenant) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await api.get("/v1/issues?source=github", headers=tenant.headers())).json()["data"]
    return data


async def test_a_signed_delivery_is_ingested_and_the_secret_is_never_shown_again(
        api: Client, tenant: Tenant) -> None:
    connector_id, secret = await connector(api, tenant)
    raw = github_event(1)

    response = await deliver(api, connector_id, raw, **{"x-causeloop-signature": sign(secret, raw),
                                                        "x-causeloop-delivery": "d-1"})
    shown = await api.get(f"/v1/connectors/{connector_id}", headers=tenant.headers(ADMIN))

    assert secret.startswith("whsec_")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1 and body["rejected"] == [] and body["job_id"].startswith("ing_job_")
    assert shown.json()["has_signing_secret"] is True and secret not in shown.text
    issues = await github_issues(api, tenant)
    assert [(i["external_id"], i["severity"]) for i in issues] == [("acme/web#1", "critical")]


async def test_github_style_signatures_verify_too(api: Client, tenant: Tenant) -> None:
    connector_id, secret = await connector(api, tenant)
    raw = github_event(2)
    response = await deliver(api, connector_id, raw, **{"x-hub-signature-256": "sha256=" + sign(secret, raw),
                                                        "x-github-delivery": str(uuid.uuid4())})
    assert response.status_code == 202 and response.json()["accepted"] == 1


async def test_missing_or_wrong_signatures_and_missing_secrets_fail_closed(api: Client, tenant: Tenant) -> None:
    connector_id, secret = await connector(api, tenant)
    without_secret, _ = await connector(api, tenant, secret=False)
    raw = github_event(3)
    other_bytes = raw.replace(b"Checkout", b"Checkin")

    missing = await deliver(api, connector_id, raw)
    wrong = await deliver(api, connector_id, raw, **{"x-causeloop-signature": sign(secret, other_bytes)})
    bad_prefix = await deliver(api, connector_id, raw, **{"x-hub-signature-256": sign(secret, raw)})
    no_secret = await deliver(api, without_secret, raw, **{"x-causeloop-signature": sign("", raw)})
    unknown = await deliver(api, "con_01KV1PX3NR96XJRGD48NNHH431", raw, **{"x-causeloop-signature": "00"})

    for response in (missing, wrong, bad_prefix, no_secret):
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
    assert unknown.status_code == 404
    assert await github_issues(api, tenant) == []


async def test_a_replayed_or_stale_delivery_is_acknowledged_and_ingested_once(api: Client, tenant: Tenant) -> None:
    connector_id, secret = await connector(api, tenant)
    raw = github_event(4)
    signed = {"x-causeloop-signature": sign(secret, raw), "x-causeloop-delivery": "d-4"}
    first = await deliver(api, connector_id, raw, **signed)
    before = await github_issues(api, tenant)
    again = await deliver(api, connector_id, raw, **signed)
    edited = github_event(4, title="Checkout fails (edited)")
    same_id_other_body = await deliver(api, connector_id, edited, **{
        "x-causeloop-signature": sign(secret, edited), "x-causeloop-delivery": "d-4"})
    late = github_event(5)
    stale = await deliver(api, connector_id, late, **{
        "x-causeloop-signature": sign(secret, late), "x-causeloop-delivery": "d-5",
        "x-causeloop-timestamp": str(int(time.time()) - 600)})

    assert first.json()["accepted"] == 1 and first.json()["replayed"] is False
    for replay in (again, same_id_other_body, stale):
        assert replay.status_code == 202 and replay.json()["replayed"] is True and replay.json()["accepted"] == 0
    assert again.json()["job_id"] == first.json()["job_id"]
    after = await github_issues(api, tenant)
    assert [(i["external_id"], i["title"], i["version"]) for i in after] == \
        [(i["external_id"], i["title"], i["version"]) for i in before]


async def test_custom_records_are_validated_each_on_its_own(api: Client, tenant: Tenant) -> None:
    connector_id, secret = await connector(api, tenant, kind="custom_api")
    raw = json.dumps({"records": [{"external_id": "deploy-1", "severity": "p2"}, {"title": "no id"},
                                  {"external_id": "deploy-2", "title": "Rollback", "body": "canary"}]}).encode()
    response = await deliver(api, connector_id, raw, **{"x-causeloop-signature": sign(secret, raw)})
    garbage = b"{not json"
    malformed = await deliver(api, connector_id, garbage, **{"x-causeloop-signature": sign(secret, garbage)})

    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 2 and [r["index"] for r in response.json()["rejected"]] == [1]
    listed = (await api.get("/v1/issues?source=custom_api", headers=tenant.headers())).json()["data"]
    assert sorted((i["external_id"], i["title"], i["severity"]) for i in listed) == [
        ("deploy-1", "deploy-1", "high"), ("deploy-2", "Rollback", "medium")]
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "validation_error"


async def test_a_delivery_is_an_ingestion_job_readable_at_the_status_route_and_a_replay_names_it(
        api: Client, tenant: Tenant) -> None:
    connector_id, secret = await connector(api, tenant)
    raw = json.dumps({"action": "opened", "issue": {"number": 6, "title": "Cart empties"},
                      "repository": {"full_name": "acme/web"}}).encode()
    signed = {"x-causeloop-signature": sign(secret, raw), "x-causeloop-delivery": "d-6"}
    first = await deliver(api, connector_id, raw, **signed)
    again = await deliver(api, connector_id, raw, **signed)
    job = await api.get(f"/v1/ingest/status/{first.json()['job_id']}", headers=tenant.headers())
    (issue,) = await github_issues(api, tenant)

    assert first.status_code == 202 and first.headers["location"] == f"/v1/ingest/status/{first.json()['job_id']}"
    assert again.json() == {**first.json(), "accepted": 0, "replayed": True}
    assert job.status_code == 200, job.text
    body = job.json()
    assert (body["job_id"], body["status"], body["kind"], body["source"], body["connector_id"]) == \
        (first.json()["job_id"], "completed", "source", "github", connector_id)
    assert (body["received"], body["accepted"], body["created"], body["issue_ids"]) == (1, 1, 1, [issue["id"]])


async def test_a_delivery_of_records_that_all_fail_is_still_one_job_that_says_why(api: Client, tenant: Tenant) -> None:
    connector_id, secret = await connector(api, tenant)
    raw = json.dumps({"action": "opened", "issue": {"title": "no number"}, "repository": {"full_name": "a/b"}}).encode()
    response = await deliver(api, connector_id, raw, **{"x-causeloop-signature": sign(secret, raw)})
    job = await api.get(f"/v1/ingest/status/{response.json()['job_id']}", headers=tenant.headers())

    assert response.status_code == 202 and response.json()["accepted"] == 0
    assert [r["index"] for r in response.json()["rejected"]] == [0]
    assert job.json()["rejected"] == response.json()["rejected"] and job.json()["connector_id"] == connector_id
