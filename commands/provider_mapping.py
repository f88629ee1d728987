"""Provider payload → the canonical issue, one small function per provider (polled items and webhook payloads).

Kept behind `MAPPERS` so the ingestion API's normalizers can replace them later without touching the sync worker.
A mapper raises `Unmappable` for an item it cannot turn into an issue (counted as `failed` in the run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from commands.issues import OpenIssue
from domain.issues.events import Severity
from domain.issues.issue import TITLE_MAX

Raw = dict[str, Any]
Mapper = Callable[[Raw, Mapping[str, object]], OpenIssue]
BODY_MAX = 100_000


class Unmappable(ValueError):
    """The provider item lacks what an issue needs (an id)."""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _title(value: object, fallback: str) -> str:
    title = (_text(value) or fallback).strip()
    return title[:TITLE_MAX]


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dict(value: object) -> Raw:
    return value if isinstance(value, dict) else {}


def _id(value: object) -> str:
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
        return str(value)[:255]
    raise Unmappable("the item has no id")


def _body(value: str | None) -> str | None:
    return value[:BODY_MAX] if value else None


def _adf_text(node: object) -> str:
    """Plain text of an Atlassian Document Format tree (Jira v3 descriptions)."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    parts = [_adf_text(child) for child in node.get("content", []) if isinstance(node.get("content"), list)]
    joiner = "\n" if node.get("type") in ("doc", "bulletList", "orderedList") else ""
    return joiner.join(part for part in parts if part)


_JIRA_PRIORITY = {"highest": Severity.CRITICAL, "blocker": Severity.CRITICAL, "critical": Severity.CRITICAL,
                  "high": Severity.HIGH, "major": Severity.HIGH, "medium": Severity.MEDIUM,
                  "low": Severity.LOW, "lowest": Severity.LOW, "minor": Severity.LOW, "trivial": Severity.LOW}


def jira_issue(raw: Raw, config: Mapping[str, object]) -> OpenIssue:
    key = _id(raw.get("key") or raw.get("id"))
    fields = _dict(raw.get("fields"))
    priority = str(_dict(fields.get("priority")).get("name", "")).lower()
    site = str(config.get("site_url", "")).rstrip("/")
    labels = fields.get("labels")
    return OpenIssue(
        title=_title(fields.get("summary"), key), body=_body(_adf_text(fields.get("description")) or None),
        severity=_JIRA_PRIORITY.get(priority, Severity.MEDIUM), source="jira", external_id=key,
        external_url=f"{site}/browse/{key}" if site else None,
        metadata={"status": _dict(fields.get("status")).get("name"), "issuetype": _dict(fields.get("issuetype"))
                  .get("name"), "project": _dict(fields.get("project")).get("key"),
                  "labels": labels if isinstance(labels, list) else []},
        source_created_at=_time(fields.get("created")))


_LABEL_SEVERITY = {"critical": Severity.CRITICAL, "p1": Severity.CRITICAL, "sev1": Severity.CRITICAL,
                   "high": Severity.HIGH, "p2": Severity.HIGH, "sev2": Severity.HIGH,
                   "p3": Severity.MEDIUM, "low": Severity.LOW, "p4": Severity.LOW}


def github_issue(raw: Raw, config: Mapping[str, object]) -> OpenIssue:
    number = _id(raw.get("number"))
    repo = f"{config.get('owner', '')}/{config.get('repo', '')}"
    labels = [str(_dict(label).get("name", "")).lower() for label in raw.get("labels") or []
              if isinstance(label, dict)]
    severity = next((_LABEL_SEVERITY[label] for label in labels if label in _LABEL_SEVERITY), Severity.MEDIUM)
    return OpenIssue(
        title=_title(raw.get("title"), f"{repo}#{number}"), body=_body(_text(raw.get("body"))), severity=severity,
        source="github", external_id=f"{repo}#{number}", external_url=_text(raw.get("html_url")),
        metadata={"state": raw.get("state"), "labels": labels, "repository": repo},
        source_created_at=_time(raw.get("created_at")))


_PD_PRIORITY = {"p1": Severity.CRITICAL, "p2": Severity.HIGH, "p3": Severity.MEDIUM, "p4": Severity.LOW,
                "p5": Severity.LOW}


def pagerduty_incident(raw: Raw, config: Mapping[str, object]) -> OpenIssue:
    incident_id = _id(raw.get("id"))
    priority = str(_dict(raw.get("priority")).get("summary", "")).lower()
    urgency = Severity.HIGH if raw.get("urgency") == "high" else Severity.LOW
    return OpenIssue(
        title=_title(raw.get("title") or raw.get("summary"), incident_id),
        body=_body(_text(raw.get("description")) or _text(raw.get("summary"))),
        severity=_PD_PRIORITY.get(priority, urgency), source="pagerduty", external_id=incident_id,
        external_url=_text(raw.get("html_url")),
        metadata={"status": raw.get("status"), "urgency": raw.get("urgency"),
                  "incident_number": raw.get("incident_number"),
                  "service": _dict(raw.get("service")).get("summary")},
        source_created_at=_time(raw.get("created_at")))


_SENTRY_LEVEL = {"fatal": Severity.CRITICAL, "error": Severity.HIGH, "warning": Severity.MEDIUM,
                 "info": Severity.LOW, "debug": Severity.LOW}


def sentry_issue(raw: Raw, config: Mapping[str, object]) -> OpenIssue:
    issue_id = _id(raw.get("id"))
    return OpenIssue(
        title=_title(raw.get("title"), str(raw.get("shortId") or issue_id)), body=_body(_text(raw.get("culprit"))),
        severity=_SENTRY_LEVEL.get(str(raw.get("level", "")), Severity.MEDIUM), source="sentry",
        external_id=issue_id, external_url=_text(raw.get("permalink")),
        metadata={"level": raw.get("level"), "status": raw.get("status"), "short_id": raw.get("shortId"),
                  "project": _dict(raw.get("project")).get("slug")},
        source_created_at=_time(raw.get("firstSeen")))


MAPPERS: dict[str, Mapper] = {"jira": jira_issue, "github": github_issue, "pagerduty": pagerduty_incident,
                              "sentry": sentry_issue}


_SEVERITY_WORDS = {"p1": Severity.CRITICAL, "p2": Severity.HIGH, "p3": Severity.MEDIUM, "p4": Severity.LOW,
                   **{s.value: s for s in Severity}}


def canonical_record(raw: Raw, config: Mapping[str, object], source: str = "custom_api") -> OpenIssue:
    """A record already in Causeloop's shape (`external_id`, `title` falling back to it, `body`, `severity` p1–p4
    or a canonical word, `external_url`, `metadata`, `team`), from a custom integration's webhook."""
    external_id = _id(raw.get("external_id"))
    severity = _SEVERITY_WORDS.get(str(raw.get("severity", "p3")).lower(), Severity.MEDIUM)
    metadata = raw.get("metadata")
    url = _text(raw.get("external_url"))
    return OpenIssue(title=_title(raw.get("title"), external_id), body=_body(_text(raw.get("body"))),
                     severity=severity, source=source, external_id=external_id,
                     team=(_text(raw.get("team")) or "")[:120] or None,
                     external_url=url[:2048] if url and url.startswith(("https://", "http://")) else None,
                     metadata=metadata if isinstance(metadata, dict) else {},
                     source_created_at=_time(raw.get("source_created_at")))


def webhook_items(connector_type: str, payload: object) -> list[tuple[Raw, Mapper]]:
    """The provider items a webhook payload carries, each with its mapper: GitHub `issues` events (`issue`), Jira
    `jira:issue_*` events (`issue`), PagerDuty v3 (`event.data`) and v2 (`messages[].incident`), Sentry issue
    alerts (`data.issue`); any other type: one canonical record, or `records: [...]`."""
    body = _dict(payload)
    mapper = MAPPERS.get(connector_type)
    found: list[object] = []
    if connector_type in ("github", "jira"):
        found = [body.get("issue")]
    elif connector_type == "pagerduty":
        event = _dict(body.get("event"))
        found = [event.get("data")] if event else [_dict(m).get("incident") for m in body.get("messages") or []]
    elif connector_type == "sentry":
        found = [_dict(body.get("data")).get("issue")]
    else:
        records = body.get("records")
        found = records if isinstance(records, list) else [body]
        return [(_dict(item), _canonical_for(connector_type)) for item in found]
    assert mapper is not None
    return [(_dict(item), mapper) for item in found]


def _canonical_for(connector_type: str) -> Mapper:
    return lambda raw, config: canonical_record(raw, config, connector_type)
