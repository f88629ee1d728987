"""Provider clients: Jira Cloud, GitHub, PagerDuty and Sentry, speaking each one's real request and response shapes.

Each client checks its credentials with one cheap call (`check`) and pages through what changed since a cursor
(`pages`): every page comes with the cursor that is valid once it and the pages before it are stored. A cursor is a
small dict of strings kept in the connector's events: an updated-since mark, and for GitHub the ETag of the first
page at that mark (a conditional request answered 304 costs no quota and means nothing changed).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

import msgspec

from adapters.providers.http import AuthFailed, BadResponse, Http, ProviderError, decode, links

Raw = dict[str, Any]
Cursor = dict[str, str]
PAGE_SIZE = 100


@dataclass(frozen=True)
class Page:
    items: list[Raw]
    cursor: Cursor


class Client(Protocol):
    async def check(self) -> None: ...

    def pages(self, cursor: Cursor, since: datetime | None) -> AsyncIterator[Page]: ...


class ConfigError(ProviderError):
    """The connector's settings or credentials cannot make a request (e.g. a missing token)."""


def _need(values: Mapping[str, object], key: str, what: str) -> str:
    value = values.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} `{key}` is missing")
    return value


def _base(config: Mapping[str, object], key: str, default: str) -> str:
    value = config.get(key)
    return (value if isinstance(value, str) and value else default).rstrip("/")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _later(a: str | None, b: str | None) -> str | None:
    """The later of two ISO 8601 instants (either may be absent)."""
    if not a or not b:
        return a or b
    return a if _parse(a) >= _parse(b) else b


def _parse(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadResponse(f"not an ISO 8601 time: {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _start(cursor: Cursor, since: datetime | None) -> str | None:
    """A backfill's `since` wins; otherwise the cursor's mark; otherwise everything."""
    return _iso(since) if since is not None else cursor.get("since")


# --- Jira Cloud: REST v3 enhanced JQL search (POST-free GET form), nextPageToken pagination ---

class _JiraPage(msgspec.Struct):
    issues: list[Raw]
    nextPageToken: str | None = None
    isLast: bool | None = None


class Jira:
    def __init__(self, http: Http, config: Mapping[str, object], credentials: Mapping[str, str]) -> None:
        self._http = http
        self._site = _base(config, "site_url", "")
        if not self._site:
            raise ConfigError("setting `site_url` is missing")
        self._jql = str(config.get("jql") or "")
        basic = f"{_need(credentials, 'email', 'credential')}:{_need(credentials, 'api_token', 'credential')}"
        self._headers = {"Authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
                         "Accept": "application/json"}

    async def check(self) -> None:
        decode(await self._http.get(f"{self._site}/rest/api/3/myself", headers=self._headers), Raw)

    async def pages(self, cursor: Cursor, since: datetime | None) -> AsyncIterator[Page]:
        start = _start(cursor, since)
        clauses = [f"({self._jql})"] if self._jql else []
        if start:  # JQL dates have minute precision, in the site's zone; a minute earlier covers the difference
            moment = _parse(start) - timedelta(minutes=1)
            clauses.append(f'updated >= "{moment.strftime("%Y-%m-%d %H:%M")}"')
        jql = " AND ".join(clauses) + " ORDER BY updated ASC"
        mark = cursor.get("since") if since is None else None
        token: str | None = None
        while True:
            params = {"jql": jql.strip(), "maxResults": PAGE_SIZE,
                      "fields": "summary,description,priority,status,created,updated,labels,issuetype,project"}
            if token:
                params["nextPageToken"] = token
            page: _JiraPage = decode(await self._http.get(f"{self._site}/rest/api/3/search/jql",
                                                          headers=self._headers, params=params), _JiraPage)
            for issue in page.issues:
                fields = issue.get("fields")
                mark = _later(mark, fields.get("updated") if isinstance(fields, dict) else None)
            yield Page(page.issues, {"since": mark} if mark else {})
            token = page.nextPageToken
            if page.isLast is not False or not token:
                return


# --- GitHub: issues API, Link pagination, ETag conditional requests, rate-limit headers ---

class GitHub:
    def __init__(self, http: Http, config: Mapping[str, object], credentials: Mapping[str, str]) -> None:
        self._http = http
        self._base = _base(config, "base_url", "https://api.github.com")
        owner, repo = _need(config, "owner", "setting"), _need(config, "repo", "setting")
        self._repo = f"{self._base}/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"
        self._headers = {"Authorization": f"Bearer {_need(credentials, 'token', 'credential')}",
                         "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

    async def check(self) -> None:
        decode(await self._http.get(self._repo, headers=self._headers), Raw)

    async def pages(self, cursor: Cursor, since: datetime | None) -> AsyncIterator[Page]:
        start = _start(cursor, since)
        params: dict[str, Any] = {"state": "all", "sort": "updated", "direction": "asc", "per_page": PAGE_SIZE}
        if start:
            params["since"] = start
        headers = dict(self._headers)
        etag = cursor.get("etag") if since is None and cursor.get("etag_since") == (start or "") else None
        if etag:
            headers["If-None-Match"] = etag
        response = await self._http.get(f"{self._repo}/issues", headers=headers, params=params, ok=(200, 304))
        if response.status_code == 304:  # nothing changed since the mark: no items, same cursor
            yield Page([], dict(cursor))
            return
        first_etag = response.headers.get("etag", "")
        mark = cursor.get("since") if since is None else None
        while True:
            items = decode(response, list[Raw])
            issues = [item for item in items if "pull_request" not in item]  # the issues API lists PRs too
            for item in items:
                mark = _later(mark, item.get("updated_at") if isinstance(item.get("updated_at"), str) else None)
            page_cursor = {"since": mark} if mark else {}
            if first_etag and mark == (start or None):
                page_cursor |= {"etag": first_etag, "etag_since": start or ""}
            following = links(response.headers.get("link")).get("next")
            yield Page(issues, page_cursor)
            if following is None:
                return
            response = await self._http.get(following["url"], headers=self._headers)


# --- PagerDuty: incidents API, classic offset pagination ---

class _PagerDutyPage(msgspec.Struct):
    incidents: list[Raw]
    more: bool = False
    offset: int = 0
    limit: int = PAGE_SIZE


class PagerDuty:
    WINDOW = timedelta(days=179)
    """PagerDuty refuses a `since`–`until` range over 6 months."""

    def __init__(self, http: Http, config: Mapping[str, object], credentials: Mapping[str, str],
                 now: datetime | None = None) -> None:
        self._http = http
        self._base = _base(config, "base_url", "https://api.pagerduty.com")
        services = config.get("service_ids")
        self._services = [s for s in services if isinstance(s, str)] if isinstance(services, list) else []
        self._headers = {"Authorization": f"Token token={_need(credentials, 'api_key', 'credential')}",
                         "Accept": "application/vnd.pagerduty+json;version=2"}
        self._now = now

    async def check(self) -> None:
        decode(await self._http.get(f"{self._base}/incidents", headers=self._headers,
                                    params={"limit": 1, "total": "false"}), _PagerDutyPage)

    async def pages(self, cursor: Cursor, since: datetime | None) -> AsyncIterator[Page]:
        """Incidents created in [mark − 1 day, now] (PagerDuty filters on creation; the day catches late changes)."""
        until = self._now or datetime.now(UTC)
        start = _start(cursor, since)
        begin = _parse(start) - timedelta(days=1) if start and since is None else _parse(start) if start else None
        begin = max(begin or until - self.WINDOW, until - self.WINDOW)
        offset = 0
        while True:
            params: dict[str, Any] = {"since": _iso(begin), "until": _iso(until), "limit": PAGE_SIZE,
                                      "offset": offset, "total": "false", "sort_by": "created_at:asc"}
            if self._services:
                params["service_ids[]"] = self._services
            page: _PagerDutyPage = decode(await self._http.get(f"{self._base}/incidents", headers=self._headers,
                                                               params=params), _PagerDutyPage)
            yield Page(page.incidents, {"since": _iso(until)})
            if not page.more or not page.incidents:
                return
            offset += len(page.incidents)


# --- Sentry: organization issues API, cursor pagination in the Link header ---

class Sentry:
    def __init__(self, http: Http, config: Mapping[str, object], credentials: Mapping[str, str]) -> None:
        self._http = http
        base = _base(config, "base_url", "https://sentry.io")
        self._org_url = f"{base}/api/0/organizations/{quote(_need(config, 'organization', 'setting'), safe='')}"
        project = config.get("project")
        self._project = project if isinstance(project, str) and project else None
        self._headers = {"Authorization": f"Bearer {_need(credentials, 'token', 'credential')}"}

    async def check(self) -> None:
        decode(await self._http.get(f"{self._org_url}/", headers=self._headers), Raw)

    async def pages(self, cursor: Cursor, since: datetime | None) -> AsyncIterator[Page]:
        start = _start(cursor, since)
        query = ["is:unresolved"] if start is None else []
        if start:
            query.append(f"lastSeen:>={start}")
        if self._project:
            query.append(f"project:{self._project}")
        params: dict[str, Any] = {"query": " ".join(query), "sort": "date", "limit": PAGE_SIZE}
        if start is None:
            params["statsPeriod"] = "90d"
        response = await self._http.get(f"{self._org_url}/issues/", headers=self._headers, params=params)
        mark = cursor.get("since") if since is None else None
        while True:
            items = decode(response, list[Raw])
            for item in items:
                mark = _later(mark, item.get("lastSeen") if isinstance(item.get("lastSeen"), str) else None)
            yield Page(items, {"since": mark} if mark else {})
            following = links(response.headers.get("link")).get("next")
            if following is None or following.get("results") != "true":
                return
            response = await self._http.get(following["url"], headers=self._headers)


CLIENTS: dict[str, type[Jira] | type[GitHub] | type[PagerDuty] | type[Sentry]] = {
    "jira": Jira, "github": GitHub, "pagerduty": PagerDuty, "sentry": Sentry}


def client_for(connector_type: str, http: Http, config: Mapping[str, object], credentials: Mapping[str, str]
               ) -> Client:
    cls = CLIENTS.get(connector_type)
    if cls is None:
        raise ConfigError(f"no provider client for {connector_type} connectors")
    client: Client = cls(http, config, credentials)
    return client


__all__ = ["CLIENTS", "AuthFailed", "Client", "ConfigError", "Page", "client_for"]
