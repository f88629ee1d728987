"""Outbound webhook targets: the URL policy, checked when an endpoint is saved AND at every connect, after DNS.

Refused: credentials in the URL, a scheme other than https (http only outside production, and only with
WEBHOOKS_ALLOW_PRIVATE_TARGETS), and any address that is not globally routable (loopback, private, link-local,
CGNAT, multicast, reserved, unspecified; IPv4-mapped IPv6 judged as its IPv4) unless WEBHOOKS_ALLOW_PRIVATE_TARGETS
is set (refused in production). At connect time the delivery worker connects to the address it checked, never
resolving the name again, so a DNS answer that changes in between (rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from adapters.settings import Settings

URL_MAX = 2048
Resolver = Callable[[str, int], Awaitable[list[str]]]


class TargetRefused(ValueError):
    """The URL or the address it resolves to is not allowed; the message says why (safe to show)."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    """Path and query, as sent."""

    @property
    def host_header(self) -> str:
        """The `Host` header: the name (an IPv6 address in brackets), with the port unless it is the scheme's."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == (443 if self.scheme == "https" else 80) else f"{name}:{self.port}"


def parse_target(url: str, settings: Settings) -> Target:
    """The URL's parts when its shape is allowed (no DNS here)."""
    if len(url) > URL_MAX:
        raise TargetRefused(f"must be at most {URL_MAX} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"is not a valid URL: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("must be an https:// URL")
    if parts.scheme == "http" and (settings.is_production or not settings.webhooks_allow_private_targets):
        raise TargetRefused("must be an https:// URL (http only to a loopback receiver in development)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetRefused("must not contain credentials (sign with the webhook secret instead)")
    if not parts.hostname:
        raise TargetRefused("must name a host")
    if parts.fragment:
        raise TargetRefused("must not contain a fragment")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise TargetRefused("must not contain spaces or control characters")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=parts.hostname, port=port or (443 if parts.scheme == "https" else 80),
                  path=path)


def address_allowed(address: str, settings: Settings) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_global and not ip.is_multicast:
        return True
    return settings.webhooks_allow_private_targets and not settings.is_production and not ip.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_checked(target: Target, settings: Settings, resolver: Resolver = system_resolver,
                          timeout_s: float = 5.0) -> str:
    """One address of the target's host that the policy allows; TargetRefused when every one is refused (one
    refused answer among allowed ones refuses the name: a rebinding name often answers with both)."""
    try:
        ipaddress.ip_address(target.host)
        addresses = [target.host]
    except ValueError:
        try:
            addresses = await asyncio.wait_for(resolver(target.host, target.port), timeout_s)
        except (OSError, TimeoutError, ValueError) as exc:  # ValueError: a name IDNA cannot encode
            raise TargetRefused(f"host {target.host!r} does not resolve ({type(exc).__name__})") from None
    if not addresses:
        raise TargetRefused(f"host {target.host!r} does not resolve")
    refused = [address for address in addresses if not address_allowed(address, settings)]
    if refused:
        raise TargetRefused(f"resolves to {refused[0]}, a private, loopback or link-local address")
    return addresses[0]


def sign(secret: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of the raw body under the secret (its UTF-8 bytes, `whsec_` included)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
