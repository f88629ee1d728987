"""The webhook target policy (adapters/webhook_targets.py): URL shape, addresses, and the signature."""

from __future__ import annotations

import hashlib
import hmac

import msgspec
import pytest

from adapters.settings import Settings, SettingsError, load_settings
from adapters.webhook_targets import (
    TargetRefused,
    address_allowed,
    parse_target,
    resolve_checked,
    sign,
)

STRICT = Settings(environment="production", jwt_secret="x" * 40)
DEV = Settings(webhooks_allow_private_targets=True)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1",
                                     "224.0.0.1", "255.255.255.255"])
def test_non_global_addresses_are_refused(address: str) -> None:
    assert not address_allowed(address, STRICT)


def test_global_addresses_are_allowed_and_private_ones_only_when_development_allows_them() -> None:
    assert address_allowed("93.184.216.34", STRICT) and address_allowed("2606:2800:220:1::1", STRICT)
    assert address_allowed("127.0.0.1", DEV) and not address_allowed("224.0.0.1", DEV)
    assert not address_allowed("127.0.0.1", msgspec.structs.replace(DEV, environment="production"))


@pytest.mark.parametrize(("url", "reason"), [
    ("http://hooks.example.com/x", "https"), ("ftp://hooks.example.com/x", "https"),
    ("https://u:p@hooks.example.com/x", "credentials"), ("https://u@hooks.example.com/x", "credentials"),
    ("https://hooks.example.com:99999/x", "valid URL"), ("https:///x", "host"),
    ("https://hooks.example.com/x#f", "fragment"), ("https://" + "a" * 2050, "2048"),
])
def test_url_shapes_outside_the_policy_are_refused(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused, match=reason):
        parse_target(url, STRICT)


def test_a_target_keeps_its_path_and_query_and_default_port() -> None:
    target = parse_target("https://Hooks.Example.com/in?x=1", STRICT)
    assert (target.scheme, target.host, target.port, target.path) == ("https", "hooks.example.com", 443, "/in?x=1")
    assert parse_target("http://localhost:8080", DEV).port == 8080


async def test_one_refused_answer_refuses_the_name() -> None:
    async def both(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]

    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    target = parse_target("https://rebind.example.com/x", STRICT)
    with pytest.raises(TargetRefused, match=r"127\.0\.0\.1"):
        await resolve_checked(target, STRICT, both)
    assert await resolve_checked(target, STRICT, public) == "93.184.216.34"


def test_the_signature_is_the_hex_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"id":"evt_1"}'
    assert sign("whsec_abc", body) == hmac.new(b"whsec_abc", body, hashlib.sha256).hexdigest()


def test_private_targets_cannot_be_allowed_in_production() -> None:
    with pytest.raises(SettingsError, match="WEBHOOKS_ALLOW_PRIVATE_TARGETS"):
        load_settings({"ENVIRONMENT": "production", "JWT_SECRET": "y" * 40, "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true"})
    assert load_settings({"WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true"}).webhooks_allow_private_targets is True
