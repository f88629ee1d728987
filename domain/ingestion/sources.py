"""Provider payloads → canonical records: `normalize_<source>(payload) -> CanonicalRecord`, pure and importable.

Each accepts the provider's own object as its REST API returns it, or wrapped as its webhooks deliver it:
- Jira Cloud: an issue (REST v3 `GET /rest/api/3/issue/{key}`, a `search` result item) or a webhook
  `{"webhookEvent": "jira:issue_created", "issue": {...}}`; dedup key the issue key (`ED-1`).
- PagerDuty: an incident (REST v2 `incident` object, or `{"incident": {...}}`) or a v3 webhook
  `{"event": {"event_type": "incident.triggered", "data": {...}}}`; dedup key the incident id.
- GitHub: an issue (REST `GET /repos/{owner}/{repo}/issues/{n}`) or an `issues` webhook
  `{"action": "opened", "issue": {...}, "repository": {...}}`; dedup key `owner/repo#number`.
- Sentry: an issue (`GET /api/0/issues/{id}/`) or an integration-platform webhook
  `{"action": "created", "data": {"issue": {...}}}`; dedup key the issue id.
- Datadog: a monitor notification as the webhook integration sends it (its default template's `$ID`, `$EVENT_TITLE`,
  `$EVENT_MSG`, `$DATE`, … plus the monitor variables `$ALERT_ID`, `$ALERT_PRIORITY`, `$ALERT_TYPE`,
  `$ALERT_TRANSITION`, `$ALERT_CYCLE_KEY`, `$LINK`, `$TAGS`, `$HOSTNAME`, lower-cased without `$`), or an
  Events API event (`title`, `text`, `date_happened`, `alert_type`, `priority`, `tags`); dedup key the alert
  cycle (one issue per trigger → recover cycle of a monitor), else the aggregation key, monitor id or event id.
Provider-specific facts (status, project, labels, …) go to `metadata`. A payload that names no team leaves `team`
unset, so re-sending an item (a sync, a webhook) keeps the team people gave its issue in Causeloop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from domain.ingestion.normalize import (
    BODY_MAX,
    EXTERNAL_ID_MAX,
    SEVERITY_ALIASES,
    TEAM_MAX,
    CanonicalRecord,
    Rejected,
    epoch_instant,
    instant,
    issue_title,
    metadata,
    optional_text,
    url,
)
from domain.issues.events import Metadata, Severity

Payload = Mapping[str, Any]


def _object(value: object, field: str) -> Payload:
    if not isinstance(value, dict):
        raise Rejected(field, "must be a JSON object")
    return value


def _maybe_object(value: object) -> Payload:
    return value if isinstance(value, dict) else {}


def _id(value: object, field: str) -> str:
    """An identifier providers send as a string or a number."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Rejected(field, "required (a string or a number)")
    text = optional_text(str(value), field, EXTERNAL_ID_MAX)
    if text is None:
        raise Rejected(field, "required")
    return text


def _text(value: object, field: str, limit: int | None = None) -> str | None:
    """Provider text: a string, or absent/null."""
    return optional_text(value, field, limit)


def _name(value: object) -> str | None:
    """`{"name": …}` or `{"summary": …}` reference objects (and plain strings) → the name."""
    if isinstance(value, dict):
        value = value.get("name") or value.get("summary") or value.get("slug")
    return value.strip() or None if isinstance(value, str) else None


def _names(values: object) -> list[str]:
    if not isinstance(values, list):
        return []
    return [name for name in (_name(value) for value in values) if name]


def _compact(values: Mapping[str, object]) -> Metadata:
    return metadata({key: value for key, value in values.items() if value not in (None, "", [], {})}, "metadata")


def _body(value: object, field: str) -> str:
    return (_text(value, field) or "")[:BODY_MAX]


def _title(value: object, field: str, external_id: str) -> str:
    """Provider titles can be longer than ours: cut to fit rather than drop the signal."""
    text = _text(value, field)
    return issue_title(text[:300] if text else None, external_id)


# --- Jira Cloud --------------------------------------------------------------------------------------------------

_JIRA_PRIORITY = {"highest": Severity.CRITICAL, "blocker": Severity.CRITICAL, "critical": Severity.CRITICAL,
                  "high": Severity.HIGH, "major": Severity.HIGH, "medium": Severity.MEDIUM,
                  "low": Severity.LOW, "lowest": Severity.LOW, "minor": Severity.LOW, "trivial": Severity.LOW}


def normalize_jira(payload: Payload) -> CanonicalRecord:
    issue = _object(payload.get("issue", payload), "issue")
    key = _id(issue.get("key") or issue.get("id"), "key")
    fields = _object(issue.get("fields"), "fields")
    priority = (_name(fields.get("priority")) or "").lower()
    project = _maybe_object(fields.get("project"))
    components = _names(fields.get("components"))
    return CanonicalRecord(
        source="jira", external_id=key, title=_title(fields.get("summary"), "fields.summary", key),
        body=_body(_adf_text(fields.get("description")), "fields.description"),
        severity=_JIRA_PRIORITY.get(priority, Severity.MEDIUM),
        team=_text(components[0], "fields.components", TEAM_MAX) if components else msgspec.UNSET,
        external_url=_jira_browse_url(issue.get("self"), key),
        metadata=_compact({"jira_id": str(issue.get("id") or ""), "project": project.get("key"),
                           "issue_type": _name(fields.get("issuetype")), "status": _name(fields.get("status")),
                           "priority": _name(fields.get("priority")), "labels": fields.get("labels") or [],
                           "components": components, "webhook_event": payload.get("webhookEvent")}),
        source_created_at=instant(fields.get("created"), "fields.created"),
        source_updated_at=instant(fields.get("updated"), "fields.updated"),
    )


def _adf_text(value: object) -> str | None:
    """Jira v3 descriptions are Atlassian Document Format: the text nodes, paragraphs on lines of their own."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise Rejected("fields.description", "must be a string or an Atlassian document")
    lines: list[str] = []

    def walk(node: object, line: list[str]) -> None:
        if not isinstance(node, dict):
            return
        if node.get("type") == "text" and isinstance(node.get("text"), str):
            line.append(node["text"])
        for child in node.get("content") or []:
            if isinstance(child, dict) and child.get("type") in {"paragraph", "heading", "codeBlock", "listItem"}:
                inner: list[str] = []
                walk(child, inner)
                lines.append("".join(inner))
            else:
                walk(child, line)

    top: list[str] = []
    walk(value, top)
    if top:
        lines.insert(0, "".join(top))
    return "\n".join(lines).strip()


def _jira_browse_url(self_url: object, key: str) -> str | None:
    """`https://site.atlassian.net/rest/api/3/issue/10002` → `https://site.atlassian.net/browse/ED-1`."""
    if not isinstance(self_url, str) or "/rest/api/" not in self_url:
        return None
    return url(self_url.split("/rest/api/")[0] + "/browse/" + key, "issue.self")


# --- PagerDuty ---------------------------------------------------------------------------------------------------

def normalize_pagerduty(payload: Payload) -> CanonicalRecord:
    event = _maybe_object(payload.get("event"))
    incident = _object(event.get("data") if event else payload.get("incident", payload), "incident")
    incident_id = _id(incident.get("id"), "id")
    priority = (_name(incident.get("priority")) or "").lower()
    urgency = incident.get("urgency")
    severity = {"p1": Severity.CRITICAL, "p2": Severity.HIGH, "p3": Severity.MEDIUM, "p4": Severity.LOW,
                "p5": Severity.LOW}.get(priority)
    if severity is None:
        severity = Severity.HIGH if urgency == "high" else Severity.LOW if urgency == "low" else Severity.MEDIUM
    teams = _names(incident.get("teams"))
    return CanonicalRecord(
        source="pagerduty", external_id=incident_id,
        title=_title(incident.get("title") or incident.get("summary"), "title", incident_id),
        body=_body(incident.get("description") if incident.get("description") != incident.get("title") else None,
                   "description"),
        severity=severity, team=_text(teams[0], "teams", TEAM_MAX) if teams else msgspec.UNSET,
        external_url=url(incident.get("html_url"), "html_url"),
        metadata=_compact({"incident_number": incident.get("incident_number") or incident.get("number"),
                           "status": incident.get("status"), "urgency": urgency,
                           "service": _name(incident.get("service")), "priority": _name(incident.get("priority")),
                           "escalation_policy": _name(incident.get("escalation_policy")),
                           "incident_key": incident.get("incident_key"), "event_type": event.get("event_type")}),
        source_created_at=instant(incident.get("created_at"), "created_at"),
        source_updated_at=instant(incident.get("updated_at") or event.get("occurred_at"), "updated_at"),
    )


# --- GitHub ------------------------------------------------------------------------------------------------------

_LABEL_SEVERITY = re.compile(
    r"^(?:(?:priority|severity|sev|prio)[\s:/_-]*)?(p[1-4]|sev[1-4]|critical|high|medium|low)$")
_SEV_LEVELS = {"sev1": "p1", "sev2": "p2", "sev3": "p3", "sev4": "p4"}
_REPO_FROM_API = re.compile(r"/repos/([^/]+/[^/]+)/issues/\d+$")


def normalize_github(payload: Payload) -> CanonicalRecord:
    issue = _object(payload.get("issue", payload), "issue")
    number = issue.get("number")
    if isinstance(number, bool) or not isinstance(number, int):
        raise Rejected("number", "required (the issue number)")
    repository = _maybe_object(payload.get("repository")).get("full_name")
    if not isinstance(repository, str):
        match = _REPO_FROM_API.search(str(issue.get("url") or ""))
        repository = match.group(1) if match else None
    if not repository:
        raise Rejected("repository", "required: repository.full_name, or the issue's API url")
    external_id = _id(f"{repository}#{number}", "number")
    labels = _names(issue.get("labels"))
    return CanonicalRecord(
        source="github", external_id=external_id, title=_title(issue.get("title"), "title", external_id),
        body=_body(issue.get("body"), "body"), severity=_label_severity(labels),
        external_url=url(issue.get("html_url"), "html_url"),
        metadata=_compact({"repository": repository, "number": number, "state": issue.get("state"),
                           "labels": labels, "author": _maybe_object(issue.get("user")).get("login"),
                           "pull_request": "pull_request" in issue or None, "action": payload.get("action")}),
        source_created_at=instant(issue.get("created_at"), "created_at"),
        source_updated_at=instant(issue.get("updated_at"), "updated_at"),
    )


def _label_severity(labels: list[str]) -> Severity:
    """Labels such as `p1`, `priority: high`, `sev2`, `severity/critical`; the most severe wins."""
    found = []
    for label in labels:
        match = _LABEL_SEVERITY.match(label.strip().lower())
        if match:
            word = _SEV_LEVELS.get(match.group(1), match.group(1))
            found.append(SEVERITY_ALIASES[word])
    order = list(Severity)
    return min(found, key=order.index) if found else Severity.MEDIUM


# --- Sentry ------------------------------------------------------------------------------------------------------

_SENTRY_LEVEL = {"fatal": Severity.CRITICAL, "error": Severity.HIGH, "warning": Severity.MEDIUM,
                 "info": Severity.LOW, "debug": Severity.LOW, "sample": Severity.LOW}


def normalize_sentry(payload: Payload) -> CanonicalRecord:
    data = _maybe_object(payload.get("data"))
    issue = _object(data.get("issue") if data else payload, "issue")
    issue_id = _id(issue.get("id"), "id")
    project = _maybe_object(issue.get("project"))
    details = _maybe_object(issue.get("metadata"))
    body = "\n".join(part for part in (_text(details.get("value"), "metadata.value"),
                                       _text(issue.get("culprit"), "culprit")) if part)
    return CanonicalRecord(
        source="sentry", external_id=issue_id, title=_title(issue.get("title"), "title", issue_id),
        body=body[:BODY_MAX], severity=_SENTRY_LEVEL.get(str(issue.get("level") or "").lower(), Severity.MEDIUM),
        external_url=url(issue.get("permalink") or issue.get("web_url"), "permalink"),
        metadata=_compact({"short_id": issue.get("shortId"), "level": issue.get("level"),
                           "status": issue.get("status"), "project": project.get("slug"),
                           "error_type": details.get("type"), "culprit": issue.get("culprit"),
                           "count": issue.get("count"), "platform": issue.get("platform") or project.get("platform"),
                           "action": payload.get("action")}),
        source_created_at=instant(issue.get("firstSeen"), "firstSeen"),
        source_updated_at=instant(issue.get("lastSeen"), "lastSeen"),
    )


# --- Datadog -----------------------------------------------------------------------------------------------------

_DATADOG_ALERT_TYPE = {"error": Severity.HIGH, "warning": Severity.MEDIUM, "info": Severity.LOW,
                       "success": Severity.LOW, "user_update": Severity.LOW}


def normalize_datadog(payload: Payload) -> CanonicalRecord:
    event = payload
    key = next((event[name] for name in ("alert_cycle_key", "aggreg_key", "alert_id", "id")
                if event.get(name) not in (None, "")), None)
    external_id = _id(key, "alert_cycle_key")
    priority = (_text(event.get("alert_priority") or event.get("priority"), "alert_priority") or "").lower()
    severity = {"p1": Severity.CRITICAL, "p2": Severity.HIGH, "p3": Severity.MEDIUM, "p4": Severity.LOW,
                "p5": Severity.LOW}.get(priority)
    if severity is None:
        severity = _DATADOG_ALERT_TYPE.get(str(event.get("alert_type") or "").lower(), Severity.MEDIUM)
    tags = event.get("tags")
    tag_list = [tag.strip() for tag in tags.split(",") if tag.strip()] if isinstance(tags, str) else \
        [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []
    team = next((tag.split(":", 1)[1] for tag in tag_list if tag.startswith("team:")), None)
    title = event.get("title") or event.get("alert_title") or event.get("event_title")
    return CanonicalRecord(
        source="datadog", external_id=external_id, title=_title(title, "title", external_id),
        body=_body(event.get("body") or event.get("text") or event.get("event_msg"), "body"), severity=severity,
        team=_text(team, "tags", TEAM_MAX) if team else msgspec.UNSET,
        external_url=url(event.get("link") or event.get("url") or None, "link"),
        metadata=_compact({"monitor_id": event.get("alert_id"), "transition": event.get("alert_transition"),
                           "alert_type": event.get("alert_type"), "alert_status": event.get("alert_status"),
                           "event_type": event.get("event_type"), "hostname": event.get("hostname"),
                           "metric": event.get("alert_metric"), "query": event.get("alert_query"),
                           "scope": event.get("alert_scope"), "tags": tag_list,
                           "event_id": None if event.get("id") is None else str(event["id"])}),
        source_created_at=epoch_instant(event.get("date") or event.get("date_happened"), "date"),
        source_updated_at=epoch_instant(event.get("last_updated"), "last_updated"),
    )


NORMALIZERS: Mapping[str, Callable[[Payload], CanonicalRecord]] = {
    "jira": normalize_jira, "pagerduty": normalize_pagerduty, "github": normalize_github,
    "sentry": normalize_sentry, "datadog": normalize_datadog,
}
"""The sources whose own payload shape `POST /v1/ingest/{source}/issues` takes (`custom_api` takes the canonical
record)."""


def normalize_payload(source: str, payload: object) -> CanonicalRecord:
    """A provider payload for `source` (a key of NORMALIZERS) as a canonical record; Rejected when unusable."""
    if not isinstance(payload, dict):
        raise Rejected("body", "must be a JSON object")
    try:
        return NORMALIZERS[source](payload)
    except Rejected:
        raise
    except (TypeError, ValueError, AttributeError):  # a provider field of an unexpected type
        raise Rejected("body", f"not a {source} payload") from None
    except RecursionError:
        raise Rejected("body", "nested too deeply") from None
