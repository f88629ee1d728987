"""The stored form of events never changes under us (a new optional field freezes the old line beside the
current one); older versions upcast; the bus payload round-trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters import codec
from domain.events import DomainEvent
from domain.ingestion.events import folded_job
from tests.adapters.golden_events import ingested_samples, samples

GOLDEN = Path(__file__).parent.parent / "golden" / "stored_events_current.jsonl"
"""Today's stored form of every event type: new event types append a line here; a line changes only when its
event gains an optional field, and its old form is then frozen in a file of its own that must decode forever."""
GOLDEN_BEFORE_CLIENT_IP = Path(__file__).parent.parent / "golden" / "stored_events_v1.jsonl"
"""Events as stored before the envelope gained `client_ip`: frozen, they must decode forever."""
GOLDEN_BEFORE_TEAMS = Path(__file__).parent.parent / "golden" / "notification_preferences_before_teams.jsonl"
"""`NotificationPreferencesSet` as stored before each type's channels gained `teams` and `pagerduty`: frozen."""
GOLDEN_INGESTED_BY = Path(__file__).parent.parent / "golden" / "issue_events_ingested_by.jsonl"
"""`IssueOpened` and `IssueDetailsEdited` carrying a one-signal push's job (`ingested_by`): the events without it keep
their lines in the main file byte for byte (the field is left out when unset)."""


def test_every_stored_event_in_the_golden_file_still_decodes_to_the_same_event() -> None:
    lines = GOLDEN.read_bytes().splitlines()

    assert [codec.decode(line) for line in lines] == samples()


def test_events_stored_before_client_ip_existed_decode_with_no_client_ip() -> None:
    lines = GOLDEN_BEFORE_CLIENT_IP.read_bytes().splitlines()
    expected = [msgspec.structs.replace(event, client_ip=None) for event in samples()[:len(lines)]]  # type: ignore[type-var]

    assert [codec.decode(line) for line in lines] == expected


def test_preferences_stored_before_teams_and_pagerduty_switches_decode_with_them_off() -> None:
    [line] = GOLDEN_BEFORE_TEAMS.read_bytes().splitlines()
    [expected] = [event for event in samples() if type(event).__name__ == "NotificationPreferencesSet"]

    decoded = codec.decode(line)

    assert b'"teams"' not in line and decoded == expected
    assert all(not (c.teams or c.pagerduty) for c in decoded.events.values())  # type: ignore[attr-defined]


def test_issue_events_carrying_their_ingestion_job_keep_their_stored_form() -> None:
    lines = GOLDEN_INGESTED_BY.read_bytes().splitlines()
    expected = ingested_samples()

    assert [codec.decode(line) for line in lines] == expected
    assert [codec.encode(event) for event in expected] == lines  # type: ignore[arg-type]
    assert [folded_job(event) for event in expected] == [  # the job each tells, as its own event would
        folded_job(event) for event in (codec.decode(line) for line in lines)]


def test_encoding_today_produces_the_golden_bytes() -> None:
    assert [codec.encode(event) for event in samples()] == GOLDEN.read_bytes().splitlines()  # type: ignore[arg-type]


def test_the_golden_file_covers_every_registered_event_type() -> None:
    stored_types = {msgspec.json.decode(line)["type"] for line in GOLDEN.read_bytes().splitlines()}

    assert stored_types == set(codec.EVENT_TYPES)


def test_an_older_schema_version_is_upcast_step_by_step(monkeypatch: pytest.MonkeyPatch) -> None:
    class Renamed(DomainEvent, frozen=True, kw_only=True):
        category = "issue"
        schema_version = 3
        headline: str
        priority: int

    def v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
        raw["headline"] = raw.pop("title")
        return raw

    def v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
        return {**raw, "priority": 3}

    monkeypatch.setitem(codec.EVENT_TYPES, "Renamed", Renamed)
    monkeypatch.setitem(codec.UPCASTERS, ("Renamed", 1), v1_to_v2)
    monkeypatch.setitem(codec.UPCASTERS, ("Renamed", 2), v2_to_v3)
    stored_v1 = {"type": "Renamed", "schema_version": 1, "title": "old"}

    raw = codec.upcast("Renamed", 1, Renamed.schema_version, stored_v1)

    assert raw == {"type": "Renamed", "schema_version": 3, "headline": "old", "priority": 3}


def test_an_unknown_event_type_is_an_error_not_a_skip() -> None:
    with pytest.raises(codec.UnknownEventType):
        codec.decode(b'{"schema_version":1,"type":"NoSuchEvent"}')


@pytest.mark.parametrize("event", samples(), ids=lambda e: type(e).__name__)
def test_the_bus_payload_decodes_back_to_the_stored_event(event: DomainEvent) -> None:
    position, decoded = codec.from_public(codec.encode_public(event, 42))

    assert position == 42
    assert decoded == event


def test_the_bus_payload_has_the_documented_fields() -> None:
    payload = msgspec.json.decode(codec.encode_public(samples()[0], 7))

    assert set(payload) >= {"id", "type", "schema_version", "workspace_id", "stream_id", "stream_version",
                            "position", "occurred_at", "actor", "data"}
    assert payload["stream_id"].startswith("iss_") and payload["position"] == 7
    assert payload["data"]["title"] == "Payment gateway timeout"


def test_no_two_categories_share_a_stream_prefix() -> None:
    """A public stream id (`ing_job_…`) names one category: the status route, the audit log and outbound webhooks
    render and parse ids by prefix."""
    prefixes = list(codec.STREAM_PREFIX.values())
    assert sorted(p for p in set(prefixes) if prefixes.count(p) > 1) == []
    assert codec.STREAM_PREFIX["ingestion_job"] == "ing_job"
    assert {cls.category for cls in codec.EVENT_TYPES.values()} <= set(codec.STREAM_PREFIX)
