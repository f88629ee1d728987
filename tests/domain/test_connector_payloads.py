"""A connector's provider items become canonical records through the ingestion normalizers, with the context only
the connector's config knows."""

from __future__ import annotations

import msgspec
import pytest

from domain.connectors.payloads import delivered_record, delivery_items, polled_record
from domain.ingestion.normalize import Rejected
from domain.issues.events import Severity

GITHUB = {"owner": "acme", "repo": "web"}


def test_a_polled_github_issue_takes_its_repository_from_the_connector() -> None:
    record = polled_record("github", {"number": 7, "title": "Checkout fails", "labels": [{"name": "p2"}]}, GITHUB)

    assert (record.source, record.external_id, record.title, record.severity) == \
        ("github", "acme/web#7", "Checkout fails", Severity.HIGH)
    assert record.team is msgspec.UNSET  # GitHub names no team: a resync keeps the one people set


def test_a_jira_issue_with_a_relative_self_link_browses_on_the_connector_site() -> None:
    item = {"id": "10001", "key": "OPS-1", "self": "/rest/api/3/issue/10001", "fields": {"summary": "Lag"}}
    record = polled_record("jira", item, {"site_url": "https://acme.atlassian.net/"})

    assert record.external_url == "https://acme.atlassian.net/browse/OPS-1" and record.external_id == "OPS-1"


def test_a_pagerduty_v2_webhook_carries_one_record_per_message() -> None:
    payload = {"messages": [{"incident": {"id": "P1", "title": "a"}}, {"incident": {"id": "P2", "title": "b"}}]}

    records = [delivered_record("pagerduty", item, {}) for item in delivery_items("pagerduty", payload)]

    assert [r.external_id for r in records] == ["P1", "P2"]


def test_other_connectors_deliver_canonical_records_of_their_own_source_each_with_its_key() -> None:
    items = delivery_items("servicenow", {"records": [{"external_id": "INC1", "source": "jira"}, {"title": "x"}]})

    assert delivered_record("servicenow", items[0], {}).source == "servicenow"
    with pytest.raises(Rejected) as refused:
        delivered_record("servicenow", items[1], {})
    assert refused.value.field == "external_id"
