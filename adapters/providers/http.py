"""What every provider client shares: one bounded HTTP call with timeouts, retries with backoff, `Retry-After` and
rate-limit headers honoured, and typed failures (never a hang, never an untyped exception)."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import msgspec

Sleep = Callable[[float], Awaitable[None]]


class ProviderError(Exception):
    """The provider could not give us what we asked; `outcome` names why, for runs and connection tests."""

    outcome = "provider_error"
    retryable = False


class AuthFailed(ProviderError):
    outcome = "unauthorized"


class RateLimited(ProviderError):
    outcome = "rate_limited"
    retryable = True


class Unavailable(ProviderError):
    """Timeouts, refused connections and 5xx answers, after the retries."""

    outcome = "unreachable"
    retryable = True


class BadResponse(ProviderError):
    """An answer that is not the documented shape (garbage, HTML error pages, truncated JSON)."""


@dataclass(frozen=True)
class Policy:
    """Timeouts and retry bounds of every call (settings: CONNECTOR_HTTP_*)."""

    timeout_s: float = 15.0
    attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_wait_s: float = 60.0
    """The longest a `Retry-After` or a rate-limit reset is waited out; a longer one fails the run (retried later)."""
    allow_private: bool = True
    """False (production): a host that resolves to a loopback, private, link-local or reserved address is refused
    before any request (tenants' provider URLs must not reach the inside of the deployment)."""


@dataclass
class Http:
    """An httpx client with the policy; `sleep` is injectable so tests do not wait for real backoff."""

    policy: Policy = field(default_factory=Policy)
    sleep: Sleep = asyncio.sleep
    client: httpx.AsyncClient | None = None
    calls: int = 0

    async def __aenter__(self) -> Http:
        timeout = httpx.Timeout(self.policy.timeout_s)
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                        headers={"User-Agent": "Causeloop-Connector/1"})
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def get(self, url: str, *, headers: Mapping[str, str], params: Mapping[str, Any] | None = None,
                  ok: tuple[int, ...] = (200,)) -> httpx.Response:
        return await self.send("GET", url, headers=headers, params=params, ok=ok)

    async def post_form(self, url: str, *, headers: Mapping[str, str], form: Mapping[str, str]) -> httpx.Response:
        """A form POST (an OAuth token exchange): not retried on 5xx or timeouts, since it may have been applied."""
        return await self.send("POST", url, headers=headers, form=form, ok=(200,), attempts=1)

    async def post_json(self, url: str, *, headers: Mapping[str, str], body: object,
                        ok: tuple[int, ...] = (200, 201)) -> httpx.Response:
        """A JSON POST that creates something: retried only when it surely was not applied (429, a refused
        connection); a timeout or a 5xx may have created it, so it fails at once instead of creating it twice."""
        return await self.send("POST", url, headers={**headers, "Content-Type": "application/json"},
                               content=msgspec.json.encode(body), ok=ok, replayable=False)

    async def send(self, method: str, url: str, *, headers: Mapping[str, str],
                   params: Mapping[str, Any] | None = None, form: Mapping[str, str] | None = None,
                   content: bytes | None = None, ok: tuple[int, ...] = (200,), attempts: int | None = None,
                   replayable: bool = True) -> httpx.Response:
        """A call with retries: 429 waits `Retry-After` (or the rate-limit reset); 5xx, timeouts and connection errors
        back off exponentially with jitter; 401/403 are AuthFailed at once; other 4xx are ProviderError. A call that
        is not `replayable` retries only what the provider surely did not apply (429, a refused connection)."""
        assert self.client is not None, "use `async with Http() as http`"
        last: ProviderError = Unavailable("no attempt made")
        attempts = attempts or self.policy.attempts
        if not self.policy.allow_private:
            await refuse_private(url)
        for attempt in range(attempts):
            self.calls += 1
            try:
                # One deadline for the whole exchange, headers and body: a server that trickles bytes is cut off too.
                response = await asyncio.wait_for(self.client.request(
                    method, url, headers=dict(headers), params=params, data=form, content=content),
                    self.policy.timeout_s)
            except (TimeoutError, httpx.TimeoutException) as exc:
                last = Unavailable(f"no answer from {_host(url)} within {self.policy.timeout_s:g}s")
                last.__cause__ = exc
                if not replayable and not isinstance(exc, httpx.ConnectTimeout):
                    raise last from exc
            except httpx.HTTPError as exc:
                last = Unavailable(f"cannot reach {_host(url)}: {type(exc).__name__}")
                if not replayable and not isinstance(exc, httpx.ConnectError):
                    raise last from exc
            else:
                if response.status_code in ok:
                    await self._respect_quota(response)
                    return response
                wait = self._failure(response)
                if isinstance(wait, ProviderError):
                    raise wait
                last = wait[1]
                if not replayable and not isinstance(last, RateLimited):
                    raise last
                if wait[0] is not None:
                    if wait[0] > self.policy.max_wait_s:
                        raise RateLimited(f"{_host(url)} asks to wait {wait[0]:.0f}s (more than "
                                          f"{self.policy.max_wait_s:g}s): retried at the next run")
                    if attempt + 1 < attempts:
                        await self.sleep(wait[0])
                    continue
            if attempt + 1 < attempts:
                backoff = min(self.policy.max_backoff_s, self.policy.backoff_s * 2 ** attempt)
                await self.sleep(backoff * (0.5 + random.random() / 2))
        raise last

    def _failure(self, response: httpx.Response) -> ProviderError | tuple[float | None, ProviderError]:
        """A final error, or (seconds to wait or None for backoff, the error if the attempts run out)."""
        host = _host(str(response.request.url))
        status = response.status_code
        reset = rate_limit_wait(response.headers)
        if status == 429 or (status == 403 and (reset is not None or "retry-after" in response.headers)):
            wait = retry_after(response.headers)
            return (wait if wait is not None else reset if reset is not None else self.policy.backoff_s,
                    RateLimited(f"{host} rate limit (HTTP {status})"))
        if status in (401, 403):
            return AuthFailed(f"{host} refused the credentials (HTTP {status})")
        if status >= 500:
            return None, Unavailable(f"{host} answered HTTP {status}")
        return ProviderError(f"{host} answered HTTP {status}")

    async def _respect_quota(self, response: httpx.Response) -> None:
        """A quota at zero: wait for its reset before the next call (bounded), instead of earning a 403/429."""
        if response.headers.get("x-ratelimit-remaining") == "0":
            wait = rate_limit_wait(response.headers)
            if wait is not None and 0 < wait <= self.policy.max_wait_s:
                await self.sleep(wait)


class PrivateAddress(ProviderError):
    outcome = "provider_error"


async def refuse_private(url: str) -> None:
    """PrivateAddress when the URL's host is, or resolves to, an address inside a private network."""
    host = httpx.URL(url).host
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        raise Unavailable(f"cannot resolve {host}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise PrivateAddress(f"{host} resolves to {address}, which is not a public address: refused")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until `x-ratelimit-reset` (epoch seconds, GitHub's form) when the remaining quota is zero."""
    if headers.get("x-ratelimit-remaining") != "0":
        return None
    reset = headers.get("x-ratelimit-reset", "")
    if not reset.isdigit():
        return None
    return max(0.0, int(reset) - datetime.now(UTC).timestamp())


_LINK = re.compile(r'<(?P<url>[^>]*)>(?P<params>[^,<]*)')
_PARAM = re.compile(r';\s*(?P<key>[a-zA-Z_]+)\s*=\s*"?(?P<value>[^";]*)"?')


def links(header: str | None) -> dict[str, dict[str, str]]:
    """RFC 8288 `Link` header: rel → {url, other params} (Sentry adds `results` and `cursor`)."""
    found: dict[str, dict[str, str]] = {}
    for match in _LINK.finditer(header or ""):
        params = {m["key"].lower(): m["value"] for m in _PARAM.finditer(match["params"])}
        for rel in params.get("rel", "").split():
            found[rel] = {"url": match["url"], **params}
    return found


def decode(response: httpx.Response, shape: type[Any]) -> Any:
    """The body as `shape`, or BadResponse naming what was wrong."""
    try:
        return msgspec.json.decode(response.content, type=shape)
    except msgspec.DecodeError as exc:
        raise BadResponse(f"{_host(str(response.request.url))} answered an unexpected body: {exc}") from None


def _host(url: str) -> str:
    return httpx.URL(url).host or url
