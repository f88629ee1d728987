"""Normalization rules: canonical records and each provider's own payload shape, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from domain.ingestion.normalize import Rejected, normalize_record
from domain.ingestion.sources import (
    normalize_datadog,
    normalize_github,
    normalize_jira,
    normalize_pagerduty,
    normalize_payload,
    normalize_sentry,
)
from domain.issues.events import Severity
from tests import ingest_payloads as samples


def test_text_beyond_ascii_is_kept_as_it_is() -> None:
    assert normalize_record({"title": "Zahlung fehlgeschlagen: Überlauf ✗", "body": "日本語"}).body == "日本語"


def test_title_falls_back_to_the_external_id_and_unknown_sources_become_custom_api() -> None:
    record = normalize_record({"external_id": "X-1", "source": "Nagios", "title": "  "})

    assert (record.title, record.source, record.external_id) == ("X-1", "custom_api", "X-1")
    assert record.severity is msgspec.UNSET and record.body is msgspec.UNSET


@pytest.mark.parametrize(("given", "severity"), [("p1", Severity.CRITICAL), ("P2", Severity.HIGH),
                                                  ("p3", Severity.MEDIUM), ("p4", Severity.LOW),
                                                  ("critical", Severity.CRITICAL), (None, Severity.MEDIUM)])
def test_p1_to_p4_map_to_severities(given: str | None, severity: Severity) -> None:
    assert normalize_record({"title": "t", "severity": given}).severity == severity


@pytest.mark.parametrize(("raw", "reason"), [
    ({"title": "x" * 301}, "title: must be at most 300 characters"),
    ({}, "title: required when external_id is absent"),
    ({"title": 3}, "title: must be a string"),
    ({"title": "t", "severity": 1}, "severity: must be one of p1, p2, p3, p4 (or critical, high, medium, low)"),
    ({"title": "t", "metadata": "x"}, "metadata: must be a JSON object"),
    ({"title": "t", "external_url": "ftp://x"}, "external_url: must be an http(s) URL"),
    ({"title": "t", "source_created_at": "2026-01-01T00:00:00"}, "source_created_at: must carry a UTC offset "
                                                                  "(e.g. 2026-01-31T12:00:00Z)"),
    ({"title": "t\x00"}, "title: must not contain NUL or lone surrogates"),
    ({"title": "é\ud800"}, "title: must not contain NUL or lone surrogates"),
    ({"title": "é", "body": "ü\x00"}, "body: must not contain NUL or lone surrogates"),
    ({"title": "t", "connector_id": "nope"}, "connector_id: must be a connector id (con_…)"),
    ({"title": "t", "extra": 1}, "extra: unknown field"),
    ([1], "record: must be a JSON object"),
])
def test_bad_records_are_rejected_with_a_reason(raw: Any, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        normalize_record(raw)

    assert refused.value.message == reason


def test_a_jira_webhook_becomes_its_issue() -> None:
    record = normalize_jira(samples.JIRA_WEBHOOK)

    assert (record.source, record.external_id, record.title, record.severity, record.team) == \
        ("jira", "OPS-17", "Payment gateway timeouts in eu-west-1", Severity.HIGH, "payments")
    assert record.body == "p99 above 5 s since 09:00.\nRetries exhaust the pool."
    assert record.external_url == "https://acme.atlassian.net/browse/OPS-17"
    assert record.source_created_at == datetime(2026, 12, 1, 9, 12, 44, tzinfo=UTC)
    assert record.source_updated_at == datetime(2026, 12, 1, 9, 1, 2, tzinfo=UTC)
    assert record.metadata == {"jira_id": "10002", "project": "OPS", "issue_type": "Bug", "status": "To Do",
                               "priority": "High", "labels": ["gateway", "timeout"], "components": ["payments"],
                               "webhook_event": "jira:issue_created"}
    assert normalize_jira(samples.JIRA_WEBHOOK["issue"]) == msgspec.structs.replace(
        record, metadata={k: v for k, v in record.metadata.items() if k != "webhook_event"})  # type: ignore[union-attr]


def test_a_pagerduty_incident_and_webhook() -> None:
    incident = normalize_pagerduty(samples.PAGERDUTY_INCIDENT)
    webhook = normalize_pagerduty(samples.PAGERDUTY_WEBHOOK)

    assert (incident.external_id, incident.title, incident.severity, incident.team, incident.external_url) == \
        ("PT4KHLK", "The server is on fire.", Severity.HIGH, "Engineering",
         "https://subdomain.pagerduty.com/incidents/PT4KHLK")
    assert incident.metadata["service"] == "My Mail Service"  # type: ignore[index]
    assert (webhook.external_id, webhook.title, webhook.severity, webhook.source) == \
        ("PGR0VU2", "A little bump in the road", Severity.LOW, "pagerduty")


def test_a_github_issue_webhook_keys_on_repository_and_number() -> None:
    record = normalize_github(samples.GITHUB_WEBHOOK)
    bare = normalize_github(samples.GITHUB_WEBHOOK["issue"])

    assert (record.external_id, record.title, record.severity, record.body) == \
        ("octocat/Hello-World#1347", "Found a bug", Severity.CRITICAL, "I'm having a problem with this.")
    assert record.external_url == "https://github.com/octocat/Hello-World/issues/1347"
    assert bare.external_id == record.external_id


def test_a_sentry_issue_and_its_webhook() -> None:
    record = normalize_sentry(samples.SENTRY_ISSUE)
    wrapped = normalize_sentry({"action": "created", "data": {"issue": samples.SENTRY_ISSUE}})

    assert (record.external_id, record.title, record.severity) == \
        ("1", "This is an example Python exception", Severity.HIGH)
    assert record.body == "bad pump\nraven.scripts.runner in main"
    assert record.metadata["short_id"] == "PUMP-STATION-1"  # type: ignore[index]
    assert wrapped.external_id == record.external_id


def test_a_datadog_monitor_notification_is_one_issue_per_alert_cycle() -> None:
    record = normalize_datadog(samples.DATADOG_MONITOR)

    assert (record.external_id, record.severity, record.team) == ("6991024734765427210", Severity.CRITICAL,
                                                                  "payments")
    assert record.source_created_at == datetime.fromtimestamp(1764979200, UTC)
    assert record.metadata["tags"] == ["env:prod", "service:checkout", "team:payments"]  # type: ignore[index]


@pytest.mark.parametrize(("source", "payload", "reason"), [
    ("jira", {"issue": {"key": "A-1"}}, "fields: must be a JSON object"),
    ("jira", {"issue": {"fields": {}}}, "key: required (a string or a number)"),
    ("pagerduty", {"incident": {"title": "x"}}, "id: required (a string or a number)"),
    ("github", {"issue": {"number": 1}}, "repository: required: repository.full_name, or the issue's API url"),
    ("sentry", {"id": "1", "title": 5}, "title: must be a string"),
    ("datadog", {"title": "x"}, "alert_cycle_key: required (a string or a number)"),
    ("github", [], "body: must be a JSON object"),
])
def test_provider_payloads_missing_what_they_need_are_rejected(source: str, payload: Any, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        normalize_payload(source, payload)

    assert refused.value.message == reason
