"""How notices read on the outside channels: a realtime notice by its title, a digest by its count and period, and
PagerDuty's severity from the most severe notice."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.notifications import channels

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 6, 12, 5, tzinfo=UTC)
LOW = channels.Notice(type="issue.created", title="New low issue: a", entity_type="issue", entity_id="iss_1",
                      created_at=T1, severity=4)
ALERT = channels.Notice(type="prediction.alert.fired", title="Checkout: 80%", entity_type="prediction",
                        entity_id="prd_1", created_at=T0)


def test_a_realtime_notice_is_its_title_with_a_link() -> None:
    message = channels.slack_message([LOW], "realtime", "https://app.example")

    assert message.text == "*New low issue: a*\n<https://app.example/issues/iss_1|Open in Causeloop>"


def test_a_digest_lists_its_notices_oldest_first_under_its_count() -> None:
    card = channels.teams_card([LOW, ALERT], "daily", "https://app.example")

    assert card.title == "2 Causeloop notifications (daily digest)"
    assert card.text.split("\n\n") == ["• Checkout: 80% — https://app.example/predictions/prd_1",
                                       "• New low issue: a — https://app.example/issues/iss_1"]


def test_pagerduty_takes_the_most_severe_notice() -> None:
    event = channels.pagerduty_event([LOW, ALERT], "hourly", "https://app.example", routing_key="k" * 32,
                                     dedup_key="causeloop:x")

    assert (event.payload.severity, event.dedup_key, event.event_action) == ("warning", "causeloop:x", "trigger")
    assert channels.pagerduty_severity([LOW]) == "info"
