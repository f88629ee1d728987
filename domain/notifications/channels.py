"""What a notice (or a digest of notices) looks like on each outside channel: Slack, Microsoft Teams, PagerDuty,
e-mail. Pure: the delivery worker sends what these return."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

PAGERDUTY_SEVERITY = {1: "critical", 2: "error", 3: "warning", 4: "info"}
"""Issue severity rank (p1 critical … p4 low) → PagerDuty Events v2 severity."""
SOURCE = "causeloop"
SUMMARY_MAX = 1024
"""PagerDuty truncates a summary at 1024 characters."""
DIGEST_LINES_MAX = 50
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 410})
"""A receiver answering these will answer them again (a revoked Slack/Teams webhook, a wrong PagerDuty key):
retrying is pointless."""
_ENTITY_PATHS = {"issue": "issues", "pattern": "patterns", "prediction": "predictions",
                 "recommendation": "recommendations"}


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """One notice as queued for a channel."""

    type: str
    title: str
    entity_type: str | None
    entity_id: str | None
    created_at: datetime
    severity: int | None = None
    """The issue's severity rank (1 critical … 4 low) for `issue.created`, else None."""


class SlackMessage(msgspec.Struct, frozen=True, kw_only=True):
    text: str


class TeamsCard(msgspec.Struct, frozen=True, kw_only=True):
    """A legacy MessageCard: what Teams incoming webhooks (and Workflows' webhook trigger) accept as is."""

    type: str = msgspec.field(name="@type", default="MessageCard")
    context: str = msgspec.field(name="@context", default="https://schema.org/extensions")
    summary: str
    title: str
    text: str


class PagerDutyPayload(msgspec.Struct, frozen=True, kw_only=True):
    summary: str
    source: str
    severity: str
    timestamp: str
    custom_details: dict[str, str]


class PagerDutyEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Events API v2 `trigger`; the same `dedup_key` sent twice is one incident (a resend after a crash)."""

    routing_key: str
    event_action: str
    dedup_key: str
    payload: PagerDutyPayload


class Email(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    body: str


def link(app_url: str, notice: Notice) -> str | None:
    """Where the web app shows the notice's entity."""
    section = _ENTITY_PATHS.get(notice.entity_type or "")
    if section is None or not notice.entity_id:
        return None
    return f"{app_url.rstrip('/')}/{section}/{notice.entity_id}"


def headline(notices: Sequence[Notice], digest: str) -> str:
    """One notice: its title; a digest: how many, and of which period."""
    if len(notices) == 1 and digest == "realtime":
        return notices[0].title
    count = len(notices)
    return f"{count} Causeloop notification{'s' if count != 1 else ''} ({digest} digest)"


def lines(notices: Sequence[Notice], app_url: str) -> list[str]:
    """One line per notice, oldest first, at most DIGEST_LINES_MAX (then how many more)."""
    ordered = sorted(notices, key=lambda n: n.created_at)
    shown = [f"• {n.title}" + (f" — {url}" if (url := link(app_url, n)) else "") for n in ordered[:DIGEST_LINES_MAX]]
    if len(ordered) > DIGEST_LINES_MAX:
        shown.append(f"… and {len(ordered) - DIGEST_LINES_MAX} more")
    return shown


def slack_message(notices: Sequence[Notice], digest: str, app_url: str) -> SlackMessage:
    if len(notices) == 1 and digest == "realtime":
        url = link(app_url, notices[0])
        return SlackMessage(text=f"*{notices[0].title}*" + (f"\n<{url}|Open in Causeloop>" if url else ""))
    return SlackMessage(text="\n".join([f"*{headline(notices, digest)}*", *lines(notices, app_url)]))


def teams_card(notices: Sequence[Notice], digest: str, app_url: str) -> TeamsCard:
    title = headline(notices, digest)
    return TeamsCard(summary=title[:SUMMARY_MAX], title=title, text="\n\n".join(lines(notices, app_url)))


def pagerduty_severity(notices: Sequence[Notice]) -> str:
    """The most severe of the notices: an issue by its severity, an alert `warning`, anything else `info`."""
    ranks = [n.severity if n.severity is not None else 3 if n.type == "prediction.alert.fired" else 4
             for n in notices]
    return PAGERDUTY_SEVERITY[min(ranks, default=4)]


def pagerduty_event(notices: Sequence[Notice], digest: str, app_url: str, *, routing_key: str, dedup_key: str
                    ) -> PagerDutyEvent:
    latest = max(notices, key=lambda n: n.created_at)
    details = {"type": latest.type} if len(notices) == 1 else {"notices": "\n".join(lines(notices, app_url))}
    url = link(app_url, latest)
    if url and len(notices) == 1:
        details["link"] = url
    return PagerDutyEvent(routing_key=routing_key, event_action="trigger", dedup_key=dedup_key,
                          payload=PagerDutyPayload(summary=headline(notices, digest)[:SUMMARY_MAX], source=SOURCE,
                                                   severity=pagerduty_severity(notices),
                                                   timestamp=latest.created_at.isoformat(), custom_details=details))


def email(notices: Sequence[Notice], digest: str, app_url: str) -> Email:
    subject = f"[Causeloop] {headline(notices, digest)}"[:200]
    return Email(subject=subject, body="\n".join([*lines(notices, app_url), "",
                                                  "You receive this because of your notification preferences in "
                                                  f"Causeloop: {app_url.rstrip('/')}/settings/notifications"]))
