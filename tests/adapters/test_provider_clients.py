"""The provider clients against a local server speaking the providers' shapes: pagination, incremental marks,
conditional requests, and every fault (401, 429, 5xx, garbage, a hanging response)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.providers.clients import GitHub, Jira, Page, PagerDuty, Sentry
from adapters.providers.http import (
    AuthFailed,
    BadResponse,
    Http,
    PrivateAddress,
    RateLimited,
    Unavailable,
    links,
)
from tests.adapters.provider_support import Sleeps, http
from tests.fake_providers import JIRA_EMAIL, T0, TOKEN, Provider


async def collect(client: Any, cursor: dict[str, str] | None = None, since: datetime | None = None) -> list[Page]:
    return [page async for page in client.pages(cursor or {}, since)]


def github(h: Http, base: str, token: str = TOKEN) -> GitHub:
    return GitHub(h, {"owner": "acme", "repo": "web", "base_url": base}, {"token": token})


async def test_github_pages_by_link_skips_pull_requests_and_keeps_the_latest_update_as_mark(
        server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.add_github(250)
    provider.github.append({**provider.github[0], "number": 999, "pull_request": {"url": "x"},
                            "updated_at": "2026-10-01T00:00:00Z"})
    async with http() as h:
        pages = await collect(github(h, base))
    numbers = [item["number"] for page in pages for item in page.items]
    assert len(pages) == 3 and sorted(numbers) == list(range(1, 251))
    assert pages[-1].cursor["since"] == "2026-11-01T00:04:10Z"
    issue_requests = [r for r in provider.requests if r[0].endswith("/issues")]
    assert [r[1].get("page", ["1"])[0] for r in issue_requests] == ["1", "2", "3"]
    assert issue_requests[0][2]["authorization"] == f"Bearer {TOKEN}"
    assert issue_requests[0][2]["accept"] == "application/vnd.github+json"


async def test_github_incremental_fetches_only_what_changed_and_answers_304_when_nothing_did(
        server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.add_github(5)
    async with http() as h:
        first = await collect(github(h, base))
        second = await collect(github(h, base), first[-1].cursor)
        unchanged = await collect(github(h, base), second[-1].cursor)
        provider.touch_github(2, "Checkout fails (edited)", T0 + timedelta(hours=1))
        changed = await collect(github(h, base), unchanged[-1].cursor)
    assert [item["number"] for item in second[0].items] == [5]  # the mark is inclusive: the last one again
    assert unchanged[0].items == [] and unchanged[-1].cursor == second[-1].cursor
    assert "if-none-match" in provider.requests[2][2]  # the conditional request that got a 304
    assert [item["number"] for page in changed for item in page.items] == [5, 2]  # the mark is inclusive
    assert changed[-1].cursor["since"] == "2026-11-01T01:00:00Z"


async def test_jira_searches_with_jql_and_follows_next_page_tokens(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.add_jira(230)
    async with http() as h:
        client = Jira(h, {"site_url": base, "jql": "project = OPS"}, {"email": JIRA_EMAIL, "api_token": TOKEN})
        await client.check()
        pages = await collect(client)
        again = await collect(client, pages[-1].cursor)
    assert len(pages) == 3 and len({i["key"] for p in pages for i in p.items}) == 230
    search = [r for r in provider.requests if r[0].endswith("/search/jql")]
    assert search[0][1]["jql"] == ["(project = OPS) ORDER BY updated ASC"]
    assert search[1][1]["nextPageToken"] == ["100"]
    assert 'updated >= "2026-11-08 09:59"' in search[3][1]["jql"][0]
    assert {i["key"] for p in again for i in p.items} <= {i["key"] for p in pages for i in p.items}


async def test_pagerduty_pages_by_offset_until_more_is_false(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.add_pagerduty(205)
    async with http() as h:
        client = PagerDuty(h, {"base_url": base}, {"api_key": TOKEN})
        await client.check()
        pages = await collect(client)
    assert [len(p.items) for p in pages] == [100, 100, 5]
    offsets = [r[1]["offset"][0] for r in provider.requests if r[1].get("limit") == ["100"]]
    assert offsets == ["0", "100", "200"]
    assert provider.requests[0][2]["accept"] == "application/vnd.pagerduty+json;version=2"


async def test_sentry_follows_the_cursor_link_while_it_has_results(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.add_sentry(150)
    async with http() as h:
        client = Sentry(h, {"organization": "acme", "base_url": base}, {"token": TOKEN})
        await client.check()
        pages = await collect(client)
    assert [len(p.items) for p in pages] == [100, 50]
    assert pages[-1].cursor["since"] == "2026-11-01T02:30:00Z"
    assert provider.requests[-1][1]["cursor"] == ["0:100:0"]


def test_link_headers_parse_with_sentry_parameters() -> None:
    parsed = links('<https://x/?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", '
                   '<https://x/?cursor=0:100:0>; rel="next"; results="true"; cursor="0:100:0"')
    assert parsed["next"] == {"url": "https://x/?cursor=0:100:0", "rel": "next", "results": "true",
                              "cursor": "0:100:0"}
    assert parsed["previous"]["results"] == "false" and links(None) == {}


async def test_wrong_credentials_are_auth_failed_at_once(server: tuple[str, Provider]) -> None:
    base, provider = server
    async with http() as h:
        with pytest.raises(AuthFailed):
            await github(h, base, token="wrong").check()
    assert len(provider.requests) == 1


async def test_429_waits_retry_after_then_succeeds_and_a_long_one_fails_without_waiting(
        server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.add_github(3)
    provider.fault("/repos/acme/web/issues", "429")
    sleeps = Sleeps()
    async with http(sleeps) as h:
        pages = await collect(github(h, base))
        provider.fault("/repos/acme/web/issues", "429-long")
        with pytest.raises(RateLimited):
            await collect(github(h, base))
    assert len(pages[0].items) == 3 and sleeps == [0.0]


async def test_github_rate_limit_headers_wait_for_the_reset(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.add_github(2)
    provider.fault("/repos/acme/web/issues", "ratelimit")
    sleeps = Sleeps()
    async with http(sleeps) as h:
        pages = await collect(github(h, base))
    assert len(pages[0].items) == 2 and len(sleeps) == 1 and sleeps[0] <= 1


async def test_5xx_backs_off_exponentially_then_gives_up(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.add_github(1)
    provider.fault("/repos/acme/web/issues", "500", "502")
    sleeps = Sleeps()
    async with http(sleeps, backoff_s=1.0) as h:
        pages = await collect(github(h, base))
        provider.fault("/repos/acme/web/issues", "503", "503", "503", "503")
        with pytest.raises(Unavailable, match="HTTP 503"):
            await collect(github(h, base))
    assert len(pages[0].items) == 1
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # jittered 1 s, 2 s, …
    assert len(sleeps) == 2 + 3


async def test_garbage_and_truncated_bodies_are_bad_responses(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.add_jira(1)
    provider.fault("/repos/acme/web/issues", "garbage")
    provider.fault("/rest/api/3/search", "truncated")
    async with http() as h:
        with pytest.raises(BadResponse):
            await collect(github(h, base))
        with pytest.raises(BadResponse):
            await collect(Jira(h, {"site_url": base}, {"email": JIRA_EMAIL, "api_token": TOKEN}))


async def test_a_hanging_provider_times_out(server: tuple[str, Provider]) -> None:
    base, provider = server
    provider.fault("/repos/acme/web/issues", "hang", "hang")
    started = time.monotonic()
    async with http(timeout_s=0.3, attempts=2) as h:
        with pytest.raises(Unavailable, match="no answer"):
            await collect(github(h, base))
    assert time.monotonic() - started < 3


async def test_pagerduty_window_never_exceeds_six_months(server: tuple[str, Provider]) -> None:
    base, provider = server
    now = datetime(2026, 12, 1, tzinfo=UTC)
    async with http() as h:
        await collect(PagerDuty(h, {"base_url": base}, {"api_key": TOKEN}, now=now), since=now - timedelta(days=365))
    query = provider.requests[0][1]
    assert query["since"] == ["2026-06-05T00:00:00Z"] and query["until"] == ["2026-12-01T00:00:00Z"]


async def test_production_refuses_provider_urls_that_resolve_to_private_addresses(
        server: tuple[str, Provider]) -> None:
    base, provider = server
    async with http(allow_private=False) as h:
        with pytest.raises(PrivateAddress, match=r"127\.0\.0\.1"):
            await github(h, base).check()
        with pytest.raises(PrivateAddress):
            await github(h, "http://localhost:9").check()
    assert provider.requests == []
