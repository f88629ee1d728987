"""Ticket creation in issue trackers, with each one's real API: Jira Cloud `POST /rest/api/3/issue` (the description
in Atlassian Document Format) and GitHub `POST /repos/{owner}/{repo}/issues` (a Markdown body).

The trackers reuse the read clients' settings and authentication (clients.py). A create is sent once: a timeout or
a 5xx may have created the ticket, so it is not retried (see Http.post_json); 401/403 are AuthFailed, 429 and 5xx
are RateLimited/Unavailable as for reads. A refusal of the ticket itself (an unknown project, a missing issue type,
issues switched off) is Rejected with the tracker's own words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import msgspec

from adapters.providers.clients import GitHub, Jira
from adapters.providers.http import Http, Policy, ProviderError, decode

REFUSED = (400, 404, 410, 422)
"""What a tracker answers when the ticket itself cannot be made (the request was understood and not applied)."""
DETAIL_MAX = 500


class Rejected(ProviderError):
    """The tracker refused this ticket (project, issue type, repository), not the credentials or its availability."""

    outcome = "rejected"


@dataclass(frozen=True)
class Step:
    title: str
    description: str


@dataclass(frozen=True)
class NewTicket:
    """What the ticket says: the recommendation's title, overview and plan, and where it came from."""

    title: str
    overview: str
    steps: tuple[Step, ...]
    reference: str
    """One line naming the recommendation (its id and pattern) so the ticket leads back to Causeloop."""


@dataclass(frozen=True)
class CreatedTicket:
    key: str
    url: str


class TicketTracker(Protocol):
    async def create_ticket(self, project: str, ticket: NewTicket) -> CreatedTicket: ...


def _refusal(response: httpx.Response) -> Rejected:
    """The tracker's reasons: Jira's `errorMessages` and `errors`, GitHub's `message` and `errors`."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        body = None
    reasons: list[str] = []
    if isinstance(body, dict):
        reasons += [str(m) for m in body.get("errorMessages") or [] if m]
        errors = body.get("errors")
        if isinstance(errors, dict):
            reasons += [f"{field}: {reason}" for field, reason in errors.items()]
        elif isinstance(errors, list):
            reasons += [str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e)
                        for e in errors]
        if isinstance(body.get("message"), str):
            reasons.insert(0, body["message"])
    detail = "; ".join(reasons)[:DETAIL_MAX] or "no reason given"
    return Rejected(f"{response.request.url.host} refused the ticket (HTTP {response.status_code}): {detail}")


def _text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def _paragraph(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(content)}


def adf(ticket: NewTicket) -> dict[str, Any]:
    """The ticket as an Atlassian Document Format document (Jira Cloud REST v3 descriptions are ADF, not text)."""
    items = [{"type": "listItem", "content": [_paragraph(
        {**_text(step.title), "marks": [{"type": "strong"}]}, *([_text(f": {step.description}")]
                                                               if step.description else []))]}
        for step in ticket.steps]
    content: list[dict[str, Any]] = [_paragraph(_text(ticket.overview))] if ticket.overview else []
    if items:
        content += [{"type": "heading", "attrs": {"level": 3}, "content": [_text("Implementation plan")]},
                    {"type": "orderedList", "content": items}]
    content.append(_paragraph({**_text(ticket.reference), "marks": [{"type": "em"}]}))
    return {"type": "doc", "version": 1, "content": content}


def markdown(ticket: NewTicket) -> str:
    lines = [ticket.overview, ""] if ticket.overview else []
    if ticket.steps:
        lines += ["### Implementation plan", ""]
        lines += [f"{n}. **{step.title}**" + (f": {step.description}" if step.description else "")
                  for n, step in enumerate(ticket.steps, start=1)]
        lines.append("")
    lines.append(f"_{ticket.reference}_")
    return "\n".join(lines)


class _JiraCreated(msgspec.Struct):
    id: str
    key: str
    self: str = ""


class JiraTracker(Jira):
    async def create_ticket(self, project: str, ticket: NewTicket) -> CreatedTicket:
        """A Task in the project `project` (its key); the browse URL is the site's `/browse/{key}`."""
        fields = {"project": {"key": project}, "summary": ticket.title[:255], "description": adf(ticket),
                  "issuetype": {"name": "Task"}}
        response = await self._http.post_json(f"{self._site}/rest/api/3/issue", headers=self._headers,
                                               body={"fields": fields}, ok=(200, 201, *REFUSED))
        if response.status_code in REFUSED:
            raise _refusal(response)
        created: _JiraCreated = decode(response, _JiraCreated)
        return CreatedTicket(key=created.key, url=f"{self._site}/browse/{quote(created.key)}")


class _GitHubCreated(msgspec.Struct):
    number: int
    html_url: str


class GitHubTracker(GitHub):
    async def create_ticket(self, project: str, ticket: NewTicket) -> CreatedTicket:
        """An issue in the repository `project` (owner/repo), which may differ from the one the connector reads."""
        owner, repo = project.split("/", 1)
        url = f"{self._base}/repos/{quote(owner, safe='')}/{quote(repo, safe='')}/issues"
        response = await self._http.post_json(url, headers=self._headers,
                                               body={"title": ticket.title[:256], "body": markdown(ticket)},
                                               ok=(200, 201, *REFUSED))
        if response.status_code in REFUSED:
            raise _refusal(response)
        created: _GitHubCreated = decode(response, _GitHubCreated)
        return CreatedTicket(key=f"{project}#{created.number}", url=created.html_url)


TRACKERS: dict[str, type[JiraTracker] | type[GitHubTracker]] = {"jira": JiraTracker, "github": GitHubTracker}


def tracker_for(connector_type: str, http: Http, config: Mapping[str, object], credentials: Mapping[str, str]
                ) -> TicketTracker:
    cls = TRACKERS.get(connector_type)
    if cls is None:
        raise ProviderError(f"tickets cannot be created through {connector_type} connectors")
    tracker: TicketTracker = cls(http, config, credentials)
    return tracker


@dataclass(frozen=True)
class Trackers:
    """Creates tickets with the connectors' HTTP policy (timeouts, private addresses), one client per ticket."""

    policy: Policy

    async def create(self, connector_type: str, config: Mapping[str, object], credentials: Mapping[str, str],
                     project: str, ticket: NewTicket) -> CreatedTicket:
        async with Http(self.policy) as http:
            return await tracker_for(connector_type, http, config, credentials).create_ticket(project, ticket)
