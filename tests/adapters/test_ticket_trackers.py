"""Ticket creation against a local server speaking Jira Cloud's and GitHub's shapes: the request each tracker
documents, the answer read back, and the failures a create must not retry (a 5xx or a timeout may have created it)."""

from __future__ import annotations

import time

import pytest

from adapters.providers.http import AuthFailed, Http, RateLimited, Unavailable
from adapters.providers.tickets import GitHubTracker, JiraTracker, NewTicket, Rejected, Step, adf, markdown
from tests.adapters.provider_support import Sleeps, http
from tests.fake_providers import JIRA_EMAIL, TOKEN, Provider

TICKET = NewTicket(title="Set timeouts on payment calls", overview="Bound each call to the provider.",
                   steps=(Step(title="Measure", description="Find p99 latency."),
                          Step(title="Set the budget", description="")),
                   reference="Causeloop recommendation rec_X for pattern pat_Y")




def jira(h: Http, base: str, token: str = TOKEN) -> JiraTracker:
    return JiraTracker(h, {"site_url": base}, {"email": JIRA_EMAIL, "api_token": token})


def github(h: Http, base: str) -> GitHubTracker:
    return GitHubTracker(h, {"owner": "acme", "repo": "web", "base_url": base}, {"token": TOKEN})


async def test_jira_creates_a_task_with_an_adf_description_and_answers_its_browse_url(
        server: tuple[str, Provider]) -> None:
    base, provider = server
    async with http() as h:
        created = await jira(h, base).create_ticket("RISK", TICKET)

    assert created.key == "RISK-1" and created.url == f"{base}/browse/RISK-1"
    [(kind, body)] = provider.created
    fields = body["fields"]
    assert kind == "jira" and fields["project"] == {"key": "RISK"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == TICKET.title and fields["description"] == adf(TICKET)
    assert provider.requests[-1][2]["content-type"] == "application/json"


def test_the_adf_description_holds_the_overview_the_steps_in_order_and_the_reference() -> None:
    document = adf(TICKET)

    assert document["type"] == "doc" and document["version"] == 1
    kinds = [node["type"] for node in document["content"]]
    assert kinds == ["paragraph", "heading", "orderedList", "paragraph"]
    steps = document["content"][2]["content"]
    assert [item["content"][0]["content"][0]["text"] for item in steps] == ["Measure", "Set the budget"]
    assert steps[0]["content"][0]["content"][1]["text"] == ": Find p99 latency."


async def test_github_creates_an_issue_in_the_named_repository_with_a_markdown_body(
        server: tuple[str, Provider]) -> None:
    base, provider = server
    async with http() as h:
        created = await github(h, base).create_ticket("acme/api", TICKET)

    assert created.key == "acme/api#1" and created.url == "https://github.com/acme/api/issues/1"
    [(kind, body)] = provider.created
    assert kind == "github/acme/api" and body == {"title": TICKET.title, "body": markdown(TICKET)}
    assert "1. **Measure**: Find p99 latency." in body["body"] and "2. **Set the budget**" in body["body"]


async def test_a_refused_ticket_is_rejected_with_the_trackers_reasons(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.jira_projects = {"OPS"}
    async with http() as h:
        with pytest.raises(Rejected, match="project: Specify a valid project ID or key"):
            await jira(h, base).create_ticket("RISK", TICKET)
    assert provider.created == []


async def test_wrong_credentials_are_auth_failed(server: tuple[str, Provider]) -> None:
    base, _ = server
    async with http() as h:
        with pytest.raises(AuthFailed):
            await jira(h, base, token="wrong").create_ticket("RISK", TICKET)


async def test_a_5xx_is_not_retried_since_the_ticket_may_exist(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.fault("/rest/api/3/issue", "500", "500")
    sleeps = Sleeps()
    async with http(sleeps) as h:
        with pytest.raises(Unavailable):
            await jira(h, base).create_ticket("RISK", TICKET)
    assert h.calls == 1 and sleeps == [] and provider.created == []


async def test_a_429_was_not_applied_and_is_retried_after_retry_after(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.fault("/repos/acme/web/issues", "429")
    sleeps = Sleeps()
    async with http(sleeps) as h:
        created = await github(h, base).create_ticket("acme/web", TICKET)
    assert created.key == "acme/web#1" and sleeps == [0.0] and len(provider.created) == 1


async def test_a_long_rate_limit_fails_as_rate_limited(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.fault("/repos/acme/web/issues", "429-long")
    async with http() as h:
        with pytest.raises(RateLimited):
            await github(h, base).create_ticket("acme/web", TICKET)


async def test_a_hanging_tracker_times_out_once(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.fault("/rest/api/3/issue", "hang")
    started = time.monotonic()
    async with http(timeout_s=0.3) as h:
        with pytest.raises(Unavailable, match="no answer"):
            await jira(h, base).create_ticket("RISK", TICKET)
    assert h.calls == 1 and time.monotonic() - started < 5
