"""Where a notification channel's message goes: the user's Slack or Teams webhook URL, or PagerDuty's Events API,
each through the outbound-webhook URL policy (https, a public address checked after DNS; adapters/webhook_targets.py).

The NOTIFY_*_BASE_URL settings (development and tests only: refused in production) send to another base, keeping
the path: they are the operator's choice, not a user's, so the address policy does not apply to them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from adapters.settings import Settings
from adapters.webhook_targets import Resolver, Target, TargetRefused, parse_target, resolve_checked

PAGERDUTY_EVENTS = "https://events.pagerduty.com"
PAGERDUTY_ENQUEUE = "/v2/enqueue"


def channel_url(channel: str, secret: str, settings: Settings) -> tuple[str, bool]:
    """The URL to POST to, and whether it is an operator's override."""
    if channel == "pagerduty":
        base = settings.notify_pagerduty_base_url
        return (base or PAGERDUTY_EVENTS).rstrip("/") + PAGERDUTY_ENQUEUE, bool(base)
    base = settings.notify_slack_base_url if channel == "slack" else settings.notify_teams_base_url
    if not base:
        return secret, False
    parts = urlsplit(secret)
    return base.rstrip("/") + (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), True


async def checked_target(channel: str, secret: str, settings: Settings, resolver: Resolver
                         ) -> tuple[Target, str]:
    """The target and the address to connect to; TargetRefused when the policy refuses it."""
    url, overridden = channel_url(channel, secret, settings)
    if not overridden:
        target = parse_target(url, settings)
        if target.scheme != "https":
            raise TargetRefused("must be an https:// URL")
        return target, await resolve_checked(target, settings, resolver)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"the {channel} base URL override is not an http(s) URL")
    target = Target(scheme=parts.scheme, host=parts.hostname,
                    port=parts.port or (443 if parts.scheme == "https" else 80),
                    path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    addresses = await resolver(target.host, target.port)
    if not addresses:
        raise TargetRefused(f"host {target.host!r} does not resolve")
    return target, addresses[0]
