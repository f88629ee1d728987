"""A local HTTP server that behaves like Jira Cloud, GitHub, PagerDuty and Sentry: their paths, auth headers,
response shapes and pagination (nextPageToken, Link rel="next", offset/more, Sentry's cursor Link), ticket creation
(Jira `POST /rest/api/3/issue`, GitHub `POST /repos/{owner}/{repo}/issues`, recorded in `created`), plus injectable
faults (401, 429 with Retry-After, 5xx, garbage bodies, a response that never comes) on reads and creates alike."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

TOKEN = "good-token"
JIRA_EMAIL = "bot@example.com"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Provider:
    """The provider's state: items per kind, faults queued per path prefix, and what was asked."""

    def __init__(self) -> None:
        self.github: list[dict[str, Any]] = []
        self.jira: list[dict[str, Any]] = []
        self.pagerduty: list[dict[str, Any]] = []
        self.sentry: list[dict[str, Any]] = []
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.created: list[tuple[str, dict[str, Any]]] = []
        """Tickets created: (`jira` or `github/<owner>/<repo>`, the request body), in order."""
        self.jira_projects: set[str] | None = None
        """Project keys Jira knows (None: any); another key is refused like Jira does (400)."""
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self._touched = 0
        self._github_sorted: tuple[object, list[dict[str, Any]]] | None = None

    def sorted_github(self) -> list[dict[str, Any]]:
        """By (updated_at, number), remembered until the list changes (a 10,000-issue bench asks 100 pages)."""
        key = (len(self.github), tuple(i["updated_at"] for i in self.github[-3:]), self._touched)
        if self._github_sorted is None or self._github_sorted[0] != key:
            self._github_sorted = (key, sorted(self.github, key=lambda i: (i["updated_at"], i["number"])))
        return self._github_sorted[1]

    def fault(self, prefix: str, *kinds: str) -> None:
        self.faults[prefix].extend(kinds)

    def add_github(self, count: int, start: int = 1, updated: datetime = T0, **fields: Any) -> None:
        for number in range(start, start + count):
            self.github.append({
                "id": 1000 + number, "number": number, "title": f"Checkout fails #{number}", "body": "stack trace",
                "state": "open", "labels": [{"name": "p2"}], "html_url": f"https://github.com/acme/web/issues/{number}",
                "created_at": iso(T0), "updated_at": iso(updated + timedelta(seconds=number)), **fields})

    def touch_github(self, number: int, title: str, updated: datetime) -> None:
        for issue in self.github:
            if issue["number"] == number:
                issue.update(title=title, updated_at=iso(updated))
                self._touched += 1

    def add_jira(self, count: int) -> None:
        for n in range(1, count + 1):
            self.jira.append({"id": str(10000 + n), "key": f"OPS-{n}", "self": f"/rest/api/3/issue/{10000 + n}",
                              "fields": {"summary": f"Queue backlog {n}", "priority": {"name": "High"},
                                         "status": {"name": "To Do"}, "labels": ["queue"],
                                         "description": {"type": "doc", "version": 1, "content": [
                                             {"type": "paragraph", "content": [{"type": "text", "text": "lag"}]}]},
                                         "created": "2026-11-01T10:00:00.000+0000",
                                         "updated": f"2026-11-0{1 + n % 8}T10:00:00.000+0000"}})

    def add_pagerduty(self, count: int) -> None:
        for n in range(1, count + 1):
            self.pagerduty.append({"id": f"PINC{n:04d}", "type": "incident", "incident_number": n,
                                   "title": f"DB CPU high {n}", "summary": f"[#{n}] DB CPU high", "status":
                                   "triggered", "urgency": "high", "priority": {"summary": "P1"},
                                   "html_url": f"https://acme.pagerduty.com/incidents/PINC{n:04d}",
                                   "service": {"summary": "db"}, "created_at": iso(datetime.now(UTC)
                                                                                  - timedelta(hours=n))})

    def add_sentry(self, count: int) -> None:
        for n in range(1, count + 1):
            self.sentry.append({"id": str(5000 + n), "shortId": f"WEB-{n}", "title": f"TypeError: x is undefined {n}",
                                "culprit": "app/checkout.js", "level": "error", "status": "unresolved",
                                "permalink": f"https://acme.sentry.io/issues/{5000 + n}/", "firstSeen": iso(T0),
                                "lastSeen": iso(T0 + timedelta(minutes=n)), "count": "12",
                                "project": {"slug": "web"}})


class _Handler(BaseHTTPRequestHandler):
    provider: Provider
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without it, delayed ACKs stall each page

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        p = self.provider
        with p.lock:
            p.requests.append((url.path, query, {k.lower(): v for k, v in self.headers.items()}))
            p.in_flight += 1
            p.max_in_flight = max(p.max_in_flight, p.in_flight)
            fault = next((p.faults[prefix].pop(0) for prefix in p.faults
                          if url.path.startswith(prefix) and p.faults[prefix]), None)
        try:
            if p.delay_s:
                time.sleep(p.delay_s)
            if fault is not None and self._fault(fault):
                return
            self._route(url.path, query)
        finally:
            with p.lock:
                p.in_flight -= 1

    def do_POST(self) -> None:
        """An OAuth 2.0 token endpoint (`/oauth/token`): the authorization code `good-code` for client `cl-1`; and
        the trackers' ticket creation (JSON bodies)."""
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        path = urlparse(self.path).path
        if path != "/oauth/token":
            self._create(path, raw)
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        with self.provider.lock:
            self.provider.requests.append((urlparse(self.path).path, {k: [v] for k, v in form.items()},
                                           {k.lower(): v for k, v in self.headers.items()}))
        if form.get("code") == "good-code" and form.get("client_id") == "cl-1" and \
                form.get("client_secret") == "s3cret" and form.get("grant_type") == "authorization_code":
            self._json({"access_token": "lin_oauth_access", "refresh_token": "lin_refresh", "expires_in": 3600,
                        "token_type": "Bearer", "scope": "read"})
        else:
            self._send(400, b'{"error": "invalid_grant"}')

    def _create(self, path: str, raw: bytes) -> None:
        p = self.provider
        with p.lock:
            p.requests.append((path, {}, {k.lower(): v for k, v in self.headers.items()}))
            fault = next((p.faults[prefix].pop(0) for prefix in p.faults
                          if path.startswith(prefix) and p.faults[prefix]), None)
        if fault is not None and self._fault(fault):
            return
        body = json.loads(raw or b"{}")
        basic = base64.b64encode(f"{JIRA_EMAIL}:{TOKEN}".encode()).decode()
        if path == "/rest/api/3/issue":
            if self._authorized(f"Basic {basic}"):
                self._create_jira(body)
        elif m := re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues", path):
            if self._authorized(f"Bearer {TOKEN}"):
                self._create_github(m[1], m[2], body)
        else:
            self._send(404, b'{"message": "Not Found"}')

    def _create_jira(self, body: dict[str, Any]) -> None:
        fields = body.get("fields", {})
        key = fields.get("project", {}).get("key")
        description = fields.get("description", {})
        if not isinstance(description, dict) or description.get("type") != "doc" or description.get("version") != 1:
            self._send(400, json.dumps({"errorMessages": [], "errors": {
                "description": "Operation value must be an Atlassian Document."}}).encode())
            return
        if self.provider.jira_projects is not None and key not in self.provider.jira_projects:
            self._send(400, json.dumps({"errorMessages": [], "errors": {
                "project": "Specify a valid project ID or key"}}).encode())
            return
        if fields.get("issuetype", {}).get("name") != "Task" or not fields.get("summary"):
            self._send(400, json.dumps({"errorMessages": [], "errors": {
                "issuetype": "Specify an issue type"}}).encode())
            return
        with self.provider.lock:
            self.provider.created.append(("jira", body))
            number = sum(1 for kind, b in self.provider.created if kind == "jira"
                         and b["fields"]["project"]["key"] == key)
            issue_id = str(20000 + len(self.provider.created))
        self._send(201, json.dumps({"id": issue_id, "key": f"{key}-{number}", "self": f"http://{self.headers['Host']}"
                                    f"/rest/api/3/issue/{issue_id}"}).encode())

    def _create_github(self, owner: str, repo: str, body: dict[str, Any]) -> None:
        if not body.get("title"):
            self._send(422, json.dumps({"message": "Validation Failed", "errors": [
                {"resource": "Issue", "code": "missing_field", "field": "title"}]}).encode())
            return
        with self.provider.lock:
            self.provider.created.append((f"github/{owner}/{repo}", body))
            number = sum(1 for kind, _ in self.provider.created if kind == f"github/{owner}/{repo}")
        self._send(201, json.dumps({"id": 3000 + number, "number": number, "title": body["title"],
                                    "html_url": f"https://github.com/{owner}/{repo}/issues/{number}",
                                    "state": "open"}).encode())

    def _fault(self, kind: str) -> bool:
        if kind == "hang":
            self.provider.release.wait(30)
            self.close_connection = True
            return True
        if kind == "garbage":
            self._send(200, b"<html>Service Unavailable</html>", content_type="text/html")
        elif kind == "truncated":
            self._send(200, b'{"issues": [{"id": ')
        elif kind == "429":
            self._send(429, b'{"message": "slow down"}', headers={"Retry-After": "0"})
        elif kind == "429-long":
            self._send(429, b'{"message": "slow down"}', headers={"Retry-After": "3600"})
        elif kind == "ratelimit":
            reset = int(time.time())
            self._send(403, b'{"message": "API rate limit exceeded"}',
                       headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})
        else:
            self._send(int(kind), b'{"message": "fault"}')
        return True

    def _authorized(self, expected: str) -> bool:
        if self.headers.get("Authorization") != expected:
            self._send(401, b'{"message": "Bad credentials"}')
            return False
        return True

    def _route(self, path: str, query: dict[str, list[str]]) -> None:
        if m := re.fullmatch(r"/repos/([^/]+)/([^/]+)(/issues)?", path):
            if self._authorized(f"Bearer {TOKEN}"):
                self._github(m[1], m[2], bool(m[3]), query)
        elif path.startswith("/rest/api/3/"):
            basic = base64.b64encode(f"{JIRA_EMAIL}:{TOKEN}".encode()).decode()
            if self._authorized(f"Basic {basic}"):
                self._jira(path, query)
        elif path == "/incidents":
            if self._authorized(f"Token token={TOKEN}"):
                self._pagerduty(query)
        elif m := re.fullmatch(r"/api/0/organizations/([^/]+)/(issues/)?", path):
            if self._authorized(f"Bearer {TOKEN}"):
                self._sentry(bool(m[2]), query)
        else:
            self._send(404, b'{"message": "Not Found"}')

    def _github(self, owner: str, repo: str, issues: bool, query: dict[str, list[str]]) -> None:
        if not issues:
            self._json({"id": 1, "full_name": f"{owner}/{repo}"})
            return
        since = iso(_parse(query["since"][0])) if "since" in query else None
        items = [i for i in self.provider.sorted_github() if since is None or i["updated_at"] >= since]
        per_page, page = int(query.get("per_page", ["30"])[0]), int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page: page * per_page]
        body = json.dumps(chunk).encode()
        etag = '"' + hashlib.sha1(json.dumps([query.get("since"), page, chunk]).encode()).hexdigest() + '"'
        headers = {"ETag": etag, "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999",
                   "x-ratelimit-reset": str(int(time.time()) + 3600)}
        if page * per_page < len(items):
            following = {**{k: v[0] for k, v in query.items()}, "page": str(page + 1)}
            headers["Link"] = (f'<http://{self.headers["Host"]}/repos/{owner}/{repo}/issues?{urlencode(following)}>;'
                               ' rel="next", <http://example.invalid/last>; rel="last"')
        if self.headers.get("If-None-Match") == etag:
            self._send(304, b"", headers=headers)
            return
        self._send(200, body, headers=headers)

    def _jira(self, path: str, query: dict[str, list[str]]) -> None:
        if path == "/rest/api/3/myself":
            self._json({"accountId": "5b10a2844c20165700ede21g", "emailAddress": JIRA_EMAIL})
            return
        if path != "/rest/api/3/search/jql":
            self._send(404, b"{}")
            return
        jql = query.get("jql", [""])[0]
        m = re.search(r'updated >= "(\d{4}-\d{2}-\d{2} \d{2}:\d{2})"', jql)
        since = datetime.strptime(m[1], "%Y-%m-%d %H:%M").replace(tzinfo=UTC) if m else None
        items = sorted((i for i in self.provider.jira if since is None or _parse(i["fields"]["updated"]) >= since),
                       key=lambda i: (i["fields"]["updated"], i["id"]))
        start, size = int(query.get("nextPageToken", ["0"])[0]), int(query.get("maxResults", ["50"])[0])
        chunk = items[start:start + size]
        last = start + size >= len(items)
        body: dict[str, Any] = {"issues": chunk, "isLast": last}
        if not last:
            body["nextPageToken"] = str(start + size)
        self._json(body)

    def _pagerduty(self, query: dict[str, list[str]]) -> None:
        since = _parse(query["since"][0]) if "since" in query else datetime.min.replace(tzinfo=UTC)
        until = _parse(query["until"][0]) if "until" in query else datetime.max.replace(tzinfo=UTC)
        items = sorted((i for i in self.provider.pagerduty if since <= _parse(i["created_at"]) <= until),
                       key=lambda i: i["created_at"])
        offset, limit = int(query.get("offset", ["0"])[0]), int(query.get("limit", ["25"])[0])
        chunk = items[offset:offset + limit]
        self._json({"incidents": chunk, "limit": limit, "offset": offset, "total": None,
                    "more": offset + limit < len(items)})

    def _sentry(self, issues: bool, query: dict[str, list[str]]) -> None:
        if not issues:
            self._json({"id": "1", "slug": "acme"})
            return
        m = re.search(r"lastSeen:>=(\S+)", query.get("query", [""])[0])
        since = _parse(m[1]) if m else None
        items = sorted((i for i in self.provider.sentry if since is None or _parse(i["lastSeen"]) >= since),
                       key=lambda i: i["lastSeen"], reverse=True)
        offset = int(query.get("cursor", ["0:0:0"])[0].split(":")[1])
        limit = int(query.get("limit", ["100"])[0])
        chunk = items[offset:offset + limit]
        more = offset + limit < len(items)
        base = f"http://{self.headers['Host']}/api/0/organizations/acme/issues/"
        following = {**{k: v[0] for k, v in query.items()}, "cursor": f"0:{offset + limit}:0"}
        previous = {**{k: v[0] for k, v in query.items()}, "cursor": f"0:{max(0, offset - limit)}:1"}
        link = (f'<{base}?{urlencode(previous)}>; rel="previous"; results="{str(offset > 0).lower()}"; '
                f'cursor="0:{max(0, offset - limit)}:1", '
                f'<{base}?{urlencode(following)}>; rel="next"; results="{str(more).lower()}"; '
                f'cursor="0:{offset + limit}:0"')
        self._send(200, json.dumps(chunk).encode(), headers={"Link": link})

    def _json(self, body: object) -> None:
        self._send(200, json.dumps(body).encode())

    def _send(self, status: int, body: bytes, *, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if status != 304:
            self.wfile.write(body)


@contextmanager
def serving(provider: Provider | None = None) -> Iterator[tuple[str, Provider]]:
    """(base URL, provider) while the block runs."""
    provider = provider or Provider()
    handler = type("Handler", (_Handler,), {"provider": provider})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-provider", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", provider
    finally:
        provider.release.set()
        server.shutdown()
        server.server_close()
