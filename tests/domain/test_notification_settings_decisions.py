"""Watching and notification preference decisions: idempotent watches, the channel rules, write-only secrets."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from domain.errors import InvalidValue
from domain.notifications import preferences as prefs
from domain.notifications.events import EventChannels, PatternUnwatched, PatternWatched
from domain.notifications.watch import unwatch, watch, watching
from tests.builders import meta

STREAM = uuid.UUID("01949a3c-0000-7000-8000-0000000000f1")
USER = "usr_01KV1PX3NR96XJRGD48NNHH431"
PATTERN = "pat_01KV1PX3NR96XJRGD48NNHH431"
STORED = prefs.Sealed(ciphertext="v1.sealed", hint="WXYZ")


def test_watching_twice_records_one_watch_and_unwatching_records_one_unwatch() -> None:
    first = watch([], STREAM, meta(), user_id=USER, pattern_id=PATTERN)
    again = watch(first, STREAM, meta(), user_id=USER, pattern_id=PATTERN)
    gone = unwatch(first, STREAM, meta(), user_id=USER, pattern_id=PATTERN)

    assert [type(e) for e in first] == [PatternWatched] and again == []
    assert [(type(e), e.originator_version) for e in gone] == [(PatternUnwatched, 2)]
    assert not watching([*first, *gone]) and unwatch([*first, *gone], STREAM, meta(), user_id=USER,
                                                     pattern_id=PATTERN) == []


@pytest.mark.parametrize("url", [
    "https://hooks.slack.com/services/T0/B0/abc",
    "https://hooks.slack.com:443/services/T0/B0/abc",
])
def test_a_slack_incoming_webhook_url_is_accepted(url: str) -> None:
    prefs.check_slack_webhook(url)


@pytest.mark.parametrize("url", [
    "http://hooks.slack.com/services/T0/B0/abc", "https://hooks.slack.com/", "https://hooks.slack.com",
    "https://hooks.slack.com.evil.test/services", "https://evil.test/hooks.slack.com/x",
    "https://user@hooks.slack.com/services/x", "https://hooks.slack.com:8443/services/x",
    "https://hooks.slack.com/services/x y", "https://hooks.slack.com:99999/x",
])
def test_anything_else_is_not_a_slack_webhook(url: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        prefs.check_slack_webhook(url)
    assert refused.value.field == "channels.slack_webhook_url"


def test_a_teams_webhook_lives_under_webhook_office_com() -> None:
    prefs.check_teams_webhook("https://acme.webhook.office.com/webhookb2/x")
    for url in ("https://webhook.office.com/x", "https://acme.webhook.office.com.evil.test/x",
                "http://acme.webhook.office.com/x"):
        with pytest.raises(InvalidValue):
            prefs.check_teams_webhook(url)


def test_a_pagerduty_key_is_32_letters_and_digits() -> None:
    prefs.check_pagerduty_key("0123456789abcdefABCDEF0123456789")
    for key in ("0123456789abcdef", "0123456789abcdefABCDEF012345678-", "é" * 32):
        with pytest.raises(InvalidValue):
            prefs.check_pagerduty_key(key)


def test_a_secret_left_out_or_sent_back_masked_is_kept_null_clears_it_and_a_new_one_is_checked() -> None:
    check = prefs.check_slack_webhook

    assert prefs.secret_change(msgspec.UNSET, STORED, check) is msgspec.UNSET
    assert prefs.secret_change("****WXYZ", STORED, check) is msgspec.UNSET
    assert prefs.secret_change(None, STORED, check) is None
    assert prefs.secret_change("https://hooks.slack.com/x", STORED, check) == "https://hooks.slack.com/x"
    with pytest.raises(InvalidValue):
        prefs.secret_change("****WXYZ", None, check)  # nothing stored: a mask is not a URL


def test_replacing_preferences_with_what_is_stored_records_nothing() -> None:
    stored = prefs.Preferences(slack_webhook=STORED, min_severity="p1")

    assert prefs.set_preferences(stored, stored, STREAM, 2, meta(), user_id=USER) == []
    [changed] = prefs.set_preferences(stored, msgspec.structs.replace(stored, digest="daily"), STREAM, 2, meta(),
                                      user_id=USER)
    assert (changed.digest, changed.slack_webhook_ciphertext, changed.slack_webhook_hint) == ("daily", "v1.sealed",
                                                                                                "WXYZ")


def test_the_defaults_fold_back_from_an_event_with_only_some_types() -> None:
    [event] = prefs.set_preferences(prefs.Preferences(), prefs.Preferences(
        events={"issue.created": EventChannels(in_app=False)}), STREAM, 1, meta(), user_id=USER)

    folded = prefs.project_preferences([event])

    assert set(folded.events) == set(prefs.NOTIFICATION_TYPES)
    assert prefs.muted_types(folded) == ["issue.created"]


def test_min_severity_is_a_floor_on_the_issue_severity_rank() -> None:
    assert [prefs.severity_floor(s) for s in prefs.SEVERITIES] == [1, 2, 3, 4]
    assert prefs.ISSUE_SEVERITY_RANK["high"] <= prefs.severity_floor(prefs.DEFAULT_MIN_SEVERITY)
    assert prefs.ISSUE_SEVERITY_RANK["medium"] > prefs.severity_floor(prefs.DEFAULT_MIN_SEVERITY)


def test_email_turns_on_when_any_type_asks_for_it() -> None:
    assert prefs.email_enabled(False, {"pattern.updated": EventChannels(email=True)})
    assert not prefs.email_enabled(False, {"pattern.updated": EventChannels()})
