"""Where channel messages go: the user's own webhook URL (https, public address) unless a development-only base
override names another server, which production refuses."""

from __future__ import annotations

import pytest

from adapters.channel_targets import channel_url, checked_target
from adapters.settings import Settings, SettingsError, load_settings
from adapters.webhook_targets import TargetRefused

SLACK = "https://hooks.slack.com/services/T0/B0/abc"


def test_production_refuses_the_base_url_overrides_and_a_strange_smtp_url() -> None:
    with pytest.raises(SettingsError, match="NOTIFY_SLACK_BASE_URL"):
        load_settings({"ENVIRONMENT": "production", "JWT_SECRET": "y" * 40,
                       "NOTIFY_SLACK_BASE_URL": "http://127.0.0.1:1"})
    with pytest.raises(SettingsError, match="SMTP_URL"):
        load_settings({"SMTP_URL": "http://mail.example"})


def test_an_override_keeps_the_path_and_pagerduty_defaults_to_its_events_api() -> None:
    settings = Settings(notify_slack_base_url="http://127.0.0.1:9000/")

    assert channel_url("slack", SLACK, settings) == ("http://127.0.0.1:9000/services/T0/B0/abc", True)
    assert channel_url("pagerduty", "k", Settings()) == ("https://events.pagerduty.com/v2/enqueue", False)


async def test_without_an_override_a_private_address_is_refused() -> None:
    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    with pytest.raises(TargetRefused, match="private"):
        await checked_target("slack", SLACK, Settings(), loopback)
