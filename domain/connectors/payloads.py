"""A connector's provider items → canonical records, through the ingestion normalizers (domain/ingestion/sources.py).

The one mapping of provider payloads is the ingestion API's; a connector adds only what its items lack that its
config knows: a polled GitHub issue does not name its repository (the connector's `owner/repo` does), and a Jira
issue's `self` link is absolute only when the site answers it so (the connector's `site_url` makes it so). Inbound
deliveries of other connector types carry canonical records (one, or `{"records": [...]}`), whose source is the
connector's type. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.ingestion.normalize import CanonicalRecord, Rejected, normalize_record
from domain.ingestion.sources import normalize_payload

Config = Mapping[str, object]
NORMALIZED = frozenset({"jira", "github", "pagerduty", "sentry"})
"""Connector types whose items go through their provider's normalizer; the others send canonical records."""


def polled_record(connector_type: str, item: object, config: Config) -> CanonicalRecord:
    """One item of a sync page (the provider's REST object) as a record; Rejected when it is unusable."""
    return normalize_payload(connector_type, _in_context(connector_type, item, config))


def delivery_items(connector_type: str, payload: object) -> list[object]:
    """What an inbound delivery carries, one entry per record: the provider's webhook payload itself (GitHub
    `issues`, Jira `jira:issue_*`, PagerDuty v3, Sentry issue alerts), each message of a PagerDuty v2 webhook, or
    the canonical records of any other type (`{"records": [...]}` or one record)."""
    body: Mapping[str, Any] = payload if isinstance(payload, dict) else {}
    if connector_type == "pagerduty" and "event" not in body and isinstance(body.get("messages"), list):
        return list(body["messages"])
    if connector_type in NORMALIZED:
        return [payload]
    records = body.get("records")
    return list(records) if isinstance(records, list) else [payload]


def delivered_record(connector_type: str, item: object, config: Config) -> CanonicalRecord:
    """One entry of `delivery_items` as a record. A delivery is ingested once per delivery id and its records
    update their issues by source + external_id, so each record needs its `external_id`."""
    if connector_type in NORMALIZED:
        record = normalize_payload(connector_type, _in_context(connector_type, item, config))
    else:
        if not isinstance(item, dict):
            raise Rejected("record", "must be a JSON object")
        record = normalize_record({**item, "source": connector_type})
    if record.external_id is None:
        raise Rejected("external_id", "required (the issue's dedup key)")
    return record


def _in_context(connector_type: str, item: object, config: Config) -> object:
    if not isinstance(item, dict):
        return item
    if connector_type == "github" and "issue" not in item and config.get("owner") and config.get("repo"):
        return {"issue": item, "repository": {"full_name": f"{config['owner']}/{config['repo']}"}}
    if connector_type == "jira":
        issue = item.get("issue", item)
        site = str(config.get("site_url") or "").rstrip("/")
        link = issue.get("self") if isinstance(issue, dict) else None
        if site and isinstance(issue, dict) and (link is None or (isinstance(link, str) and link.startswith("/"))):
            fixed = {**issue, "self": site + (link or f"/rest/api/3/issue/{issue.get('id') or issue.get('key')}")}
            return {**item, "issue": fixed} if "issue" in item else fixed
    return item
