"""Who the client is: the peer, unless a trusted proxy forwarded the request (pure, no services)."""

from __future__ import annotations

import pytest

from adapters.settings import Settings, SettingsError, load_settings
from api.core.client_ip import decide

TRUSTED = Settings(trusted_proxies="10.0.0.0/8, 192.0.2.1, 2001:db8:ffff::/48").trusted_proxy_networks


def test_without_trusted_proxies_the_peer_is_the_client_whatever_is_forwarded() -> None:
    assert decide("198.51.100.7", ["203.0.113.1"], ()) == "198.51.100.7"


def test_an_untrusted_peer_is_the_client_even_when_proxies_are_configured() -> None:
    assert decide("198.51.100.7", ["203.0.113.1, 10.0.0.1"], TRUSTED) == "198.51.100.7"


@pytest.mark.parametrize(("forwarded", "client"), [
    (["203.0.113.1"], "203.0.113.1"),
    (["6.6.6.6, 203.0.113.1"], "203.0.113.1"),  # whatever the client wrote on the left is never read
    (["6.6.6.6, 203.0.113.1, 10.1.1.1"], "203.0.113.1"),  # a second trusted hop hands over too
    (["6.6.6.6", "203.0.113.1, 192.0.2.1"], "203.0.113.1"),  # several header lines read as one list
    (["203.0.113.1:5123"], "203.0.113.1"),
    (["[2001:db8::5]:443, 2001:db8:ffff::9"], "2001:db8::5"),
    (["::ffff:203.0.113.1"], "203.0.113.1"),
    (["10.2.2.2, 10.3.3.3"], "10.2.2.2"),  # every hop trusted: the left-most is the client
    (["203.0.113.1, not-an-address"], "10.0.0.5"),  # the proxy handed over nothing usable: it is the client
    ([], "10.0.0.5"),
])
def test_behind_trusted_proxies_the_right_most_untrusted_address_is_the_client(forwarded: list[str],
                                                                                client: str) -> None:
    assert decide("10.0.0.5", forwarded, TRUSTED) == client


def test_no_peer_is_unknown() -> None:
    assert decide(None, ["203.0.113.1"], TRUSTED) == "unknown"


def test_a_malformed_trusted_proxies_setting_stops_the_start() -> None:
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        load_settings({"TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"})
