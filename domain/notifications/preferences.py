"""A user's notification preferences: the defaults, the rules a full replacement must meet, and what they filter.

Channel secrets (webhook URLs, the PagerDuty key) are write-only: a replacement may leave one out, or send back the
masked form it was shown, to keep the stored one; null clears it. Sealing them is the command's job (no I/O here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from urllib.parse import SplitResult, urlsplit
from uuid import UUID

import msgspec

from domain.errors import InvalidValue
from domain.events import Meta, envelope
from domain.notifications.events import EventChannels, NotificationPreferencesSet

NOTIFICATION_TYPES = ("issue.created", "pattern.updated", "prediction.alert.fired", "recommendation.created")
SEVERITIES = ("p1", "p2", "p3", "p4")
ISSUE_SEVERITY_RANK = {"critical": 1, "high": 2, "medium": 3, "low": 4}
"""p1 = critical … p4 = low: an issue of rank above the floor's is below the minimum severity."""
DIGESTS = ("realtime", "hourly", "daily", "weekly")
DEFAULT_MIN_SEVERITY = "p2"
DEFAULT_MIN_RISK_SCORE = 70
DEFAULT_DIGEST = "realtime"
MASK = "****"
HINT_LENGTH = 4
PAGERDUTY_KEY_LENGTH = 32


class Sealed(msgspec.Struct, frozen=True, kw_only=True):
    """A stored channel secret: its ciphertext and the last characters shown masked."""

    ciphertext: str
    hint: str


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    email: bool = False
    slack_webhook: Sealed | None = None
    teams_webhook: Sealed | None = None
    pagerduty_key: Sealed | None = None
    min_severity: str = DEFAULT_MIN_SEVERITY
    min_risk_score: int = DEFAULT_MIN_RISK_SCORE
    digest: str = DEFAULT_DIGEST
    events: dict[str, EventChannels] = msgspec.field(
        default_factory=lambda: {kind: EventChannels() for kind in NOTIFICATION_TYPES})


def severity_floor(min_severity: str) -> int:
    """The highest issue severity rank still notified: `p2` lets critical (1) and high (2) through."""
    return SEVERITIES.index(min_severity) + 1


def email_enabled(email: bool, events: Mapping[str, EventChannels]) -> bool:
    """The e-mail channel turns on by itself when any notification type asks for e-mail."""
    return email or any(channels.email for channels in events.values())


def muted_types(preferences: Preferences) -> list[str]:
    """The notification types kept out of the in-app feed."""
    return sorted(kind for kind, channels in preferences.events.items() if not channels.in_app)


def _sealed(ciphertext: str | None, hint: str | None) -> Sealed | None:
    return None if ciphertext is None else Sealed(ciphertext=ciphertext, hint=hint or "")


def project_preferences(history: Sequence[object]) -> Preferences:
    """The latest replacement, else the defaults (a PUT replaces the whole document)."""
    latest = next((e for e in reversed(history) if isinstance(e, NotificationPreferencesSet)), None)
    if latest is None:
        return Preferences()
    return Preferences(
        email=latest.email, slack_webhook=_sealed(latest.slack_webhook_ciphertext, latest.slack_webhook_hint),
        teams_webhook=_sealed(latest.teams_webhook_ciphertext, latest.teams_webhook_hint),
        pagerduty_key=_sealed(latest.pagerduty_key_ciphertext, latest.pagerduty_key_hint),
        min_severity=latest.min_severity, min_risk_score=latest.min_risk_score, digest=latest.digest,
        events={**{kind: EventChannels() for kind in NOTIFICATION_TYPES}, **latest.events})


def masked(secret: Sealed | None) -> str | None:
    """How a stored secret is shown: `****` and its last four characters."""
    return None if secret is None else MASK + secret.hint


def check_slack_webhook(url: str) -> None:
    """A Slack incoming webhook: https://hooks.slack.com/… (nothing else is a Slack webhook)."""
    parts = _url(url, "channels.slack_webhook_url")
    if parts.hostname != "hooks.slack.com" or parts.path in ("", "/"):
        raise InvalidValue("channels.slack_webhook_url", "must be an https://hooks.slack.com/… incoming webhook URL")


def check_teams_webhook(url: str) -> None:
    """A Microsoft Teams incoming webhook: https on a host under webhook.office.com."""
    parts = _url(url, "channels.teams_webhook_url")
    host = parts.hostname or ""
    if not host.endswith(".webhook.office.com") or parts.path in ("", "/"):
        raise InvalidValue("channels.teams_webhook_url",
                           "must be an https://….webhook.office.com/… incoming webhook URL")


def check_pagerduty_key(key: str) -> None:
    """A PagerDuty Events API v2 integration key: 32 letters and digits."""
    if len(key) != PAGERDUTY_KEY_LENGTH or not key.isascii() or not key.isalnum():
        raise InvalidValue("channels.pagerduty_integration_key", "must be 32 letters and digits")


def _url(url: str, field: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidValue(field, "must be an https URL") from None
    if parts.scheme != "https" or parts.username is not None or port not in (None, 443) or not url.isprintable() \
            or any(c.isspace() for c in url):
        raise InvalidValue(field, "must be an https URL without credentials or a custom port")
    return parts


def secret_change(given: str | None | msgspec.UnsetType, stored: Sealed | None, check: Callable[[str], None]
                  ) -> str | None | msgspec.UnsetType:
    """UNSET: keep the stored secret (left out, or sent back masked as shown); None: clear it; else the new one,
    checked."""
    if given is msgspec.UNSET or given is None:
        return given
    if stored is not None and given == masked(stored):
        return msgspec.UNSET
    check(given)
    return given


def set_preferences(current: Preferences, wanted: Preferences, stream_id: UUID, version: int, meta: Meta, *,
                    user_id: str) -> list[NotificationPreferencesSet]:
    """A replacement equal to what is stored records nothing."""
    if wanted == current:
        return []
    return [NotificationPreferencesSet(
        **envelope(meta, stream_id, version), user_id=user_id, email=wanted.email,
        slack_webhook_ciphertext=_ciphertext(wanted.slack_webhook), slack_webhook_hint=_hint(wanted.slack_webhook),
        teams_webhook_ciphertext=_ciphertext(wanted.teams_webhook), teams_webhook_hint=_hint(wanted.teams_webhook),
        pagerduty_key_ciphertext=_ciphertext(wanted.pagerduty_key), pagerduty_key_hint=_hint(wanted.pagerduty_key),
        min_severity=wanted.min_severity, min_risk_score=wanted.min_risk_score, digest=wanted.digest,
        events=dict(sorted(wanted.events.items())))]


def hint_of(secret: str) -> str:
    return secret[-HINT_LENGTH:]


def _ciphertext(secret: Sealed | None) -> str | None:
    return None if secret is None else secret.ciphertext


def _hint(secret: Sealed | None) -> str | None:
    return None if secret is None else secret.hint
