"""The client's address, decided once per request: the rate limit's key and the `client_ip` of every event it
causes (so the audit log's `ip`).

`X-Forwarded-For` is believed only from the reverse proxies in TRUSTED_PROXIES (empty by default: the peer is the
client). When the peer is a trusted proxy, the client is the right-most address that is not one: starting at the
peer, each trusted hop hands over to the entry on its left. Entries left of the first untrusted one were written by
whoever sent the request and are never read, so rotating them neither escapes the rate limit nor forges an IP.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from litestar.types import Scope

from api.core.request_id import header_values

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address
STATE_KEY = "causeloop.client_addresses"
"""Where the app's ClientAddresses lives in `app.state` (installed by api.core.conventions)."""
_DECIDED = "causeloop.client_ip"
UNKNOWN = "unknown"


def parse_address(text: str) -> Address | None:
    """An address as a peer or a forwarded entry gives it: plain, `v4:port` or `[v6]:port`; IPv4-mapped IPv6 is
    read as the IPv4 address. None when it is not an address."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def decide(peer: str | None, forwarded: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address: the peer, or behind trusted proxies the right-most untrusted forwarded address.

    An entry that is not an address stops the walk at the trusted hop that handed it over (that proxy is then
    the client). If every hop is trusted, the left-most one is the client.
    """
    if peer is None:
        return UNKNOWN
    if not trusted:
        return peer
    current = parse_address(peer)
    if current is None:
        return peer
    hops = [entry for header in forwarded for entry in header.split(",") if entry.strip()]
    while hops and any(current in network for network in trusted):
        entry = parse_address(hops.pop())
        if entry is None:
            break
        current = entry
    return str(current)


class ClientAddresses:
    """Decides each request's client address once, against the configured trusted proxies."""

    def __init__(self, trusted: Sequence[Network]) -> None:
        self.trusted = tuple(trusted)

    def of(self, scope: Scope) -> str:
        state = scope.setdefault("state", {})
        decided = state.get(_DECIDED)
        if isinstance(decided, str):
            return decided
        client = scope.get("client")
        forwarded = header_values(scope, b"x-forwarded-for") if self.trusted else []
        decided = decide(client[0] if client else None, forwarded, self.trusted)
        state[_DECIDED] = decided
        return decided


def client_ip(scope: Scope) -> str:
    """The request's client address (the rate limit's key, the events' `client_ip`): one answer per request."""
    addresses: ClientAddresses = scope["litestar_app"].state[STATE_KEY]
    return addresses.of(scope)
