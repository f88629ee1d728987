"""The connector catalogue: global reference data (what each tool ingests, how it authenticates, its settings)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec


class AuthKind(StrEnum):
    OAUTH = "oauth"
    API_KEY = "api_key"
    NONE = "none"


class CatalogEntry(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    name: str
    category: str
    auth: AuthKind
    oauth: bool
    ingests: list[str]
    permissions: list[str]
    config_schema: dict[str, Any]
    credentials_schema: dict[str, Any]
    sync: bool
    """Whether Causeloop polls this tool (a provider client exists); push-only types ingest by API or webhook."""


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_URL = {"type": "string", "format": "uri", "maxLength": 2048}


def _text(description: str, max_length: int = 500) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length, "description": description}


_BASE_URL = {**_URL, "description": "API base URL (for self-hosted or regional instances)"}
_OAUTH_CREDENTIALS = _schema({
    "access_token": _text("set by the OAuth callback (or pasted)", 4096),
    "refresh_token": _text("set by the OAuth callback", 4096), "token_type": _text("e.g. bearer", 40),
    "expires_at": _text("ISO 8601", 40)}, ["access_token"])

ENTRIES: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        type="jira", name="Jira Cloud", category="issue_tracking", auth=AuthKind.API_KEY, oauth=False,
        ingests=["issues", "bugs", "incidents"], permissions=["read:jira-work", "read:jira-user", "write:jira-work"],
        config_schema=_schema({"site_url": {**_URL, "description": "https://<your-site>.atlassian.net"},
                               "jql": _text("JQL filter, e.g. project = OPS", 2000)}, ["site_url"]),
        credentials_schema=_schema({"email": _text("Atlassian account email", 320),
                                    "api_token": _text("Atlassian API token", 500)}, ["email", "api_token"]),
        sync=True),
    CatalogEntry(
        type="github", name="GitHub", category="source_control", auth=AuthKind.API_KEY, oauth=False,
        ingests=["issues"], permissions=["issues:read", "metadata:read", "issues:write"],
        config_schema=_schema({"owner": _text("organization or user", 100), "repo": _text("repository", 100),
                               "base_url": _BASE_URL}, ["owner", "repo"]),
        credentials_schema=_schema({"token": _text("fine-grained personal access token or app token")}, ["token"]),
        sync=True),
    CatalogEntry(
        type="pagerduty", name="PagerDuty", category="incident_management", auth=AuthKind.API_KEY, oauth=False,
        ingests=["incidents"], permissions=["incidents.read", "services.read"],
        config_schema=_schema({"service_ids": {"type": "array", "items": _text("service id", 40), "maxItems": 50},
                               "base_url": _BASE_URL}, []),
        credentials_schema=_schema({"api_key": _text("REST API key (read-only is enough)")}, ["api_key"]),
        sync=True),
    CatalogEntry(
        type="servicenow", name="ServiceNow", category="itsm", auth=AuthKind.OAUTH, oauth=True,
        ingests=["incidents", "problems", "changes"], permissions=["incident.read", "problem.read"],
        config_schema=_schema({"instance_url": {**_URL, "description": "https://<instance>.service-now.com"}},
                              ["instance_url"]),
        credentials_schema=_OAUTH_CREDENTIALS, sync=False),
    CatalogEntry(
        type="datadog", name="Datadog", category="observability", auth=AuthKind.API_KEY, oauth=False,
        ingests=["monitor_alerts", "events"], permissions=["monitors_read", "events_read"],
        config_schema=_schema({"site": _text("datadoghq.com, datadoghq.eu, …", 100)}, []),
        credentials_schema=_schema({"api_key": _text("API key"), "application_key": _text("application key")},
                                   ["api_key", "application_key"]),
        sync=False),
    CatalogEntry(
        type="sentry", name="Sentry", category="error_tracking", auth=AuthKind.API_KEY, oauth=False,
        ingests=["issues", "errors"], permissions=["event:read", "project:read", "org:read"],
        config_schema=_schema({"organization": _text("organization slug", 100),
                               "project": _text("project slug (default: every project)", 100),
                               "base_url": _BASE_URL}, ["organization"]),
        credentials_schema=_schema({"token": _text("auth token")}, ["token"]), sync=True),
    CatalogEntry(
        type="opsgenie", name="Opsgenie", category="incident_management", auth=AuthKind.API_KEY, oauth=False,
        ingests=["alerts", "incidents"], permissions=["read"],
        config_schema=_schema({"region": {"type": "string", "enum": ["us", "eu"]}}, []),
        credentials_schema=_schema({"api_key": _text("API integration key")}, ["api_key"]), sync=False),
    CatalogEntry(
        type="linear", name="Linear", category="issue_tracking", auth=AuthKind.OAUTH, oauth=True,
        ingests=["issues"], permissions=["read"],
        config_schema=_schema({"team_key": _text("team key, e.g. ENG", 20)}, []),
        credentials_schema=_OAUTH_CREDENTIALS, sync=False),
    CatalogEntry(
        type="zendesk", name="Zendesk", category="customer_support", auth=AuthKind.OAUTH, oauth=True,
        ingests=["tickets"], permissions=["read"],
        config_schema=_schema({"subdomain": _text("<subdomain>.zendesk.com", 100)}, ["subdomain"]),
        credentials_schema=_OAUTH_CREDENTIALS, sync=False),
    CatalogEntry(
        type="custom_api", name="Custom API", category="custom", auth=AuthKind.NONE, oauth=False,
        ingests=["issues", "events"], permissions=["ingest:write"],
        config_schema=_schema({"description": _text("what pushes here", 500)}, []),
        credentials_schema=_schema({}, []), sync=False),
)
CATALOG: dict[str, CatalogEntry] = {entry.type: entry for entry in ENTRIES}
