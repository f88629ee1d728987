"""Raw signals → canonical issue records (docs/ingestion.md, "Normalization").

Pure: no I/O, no clock. The ingestion API runs every record through `normalize_record` (the canonical shape of
`POST /v1/ingest/events` and of each `POST /v1/ingest/batch` record); the provider-shaped payloads go through
`domain.ingestion.sources`, which builds the same `CanonicalRecord`. A record that cannot be normalized raises
`Rejected` naming the field and the reason: a batch reports it as `rejected[{index, reason}]`, a single signal
as a 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from domain.errors import InvalidValue
from domain.issues.events import Metadata, Severity
from domain.issues.issue import TITLE_MAX

KNOWN_SOURCES = frozenset({"jira", "github", "pagerduty", "servicenow", "datadog", "sentry", "opsgenie", "linear",
                           "zendesk", "custom_api"})
"""Sources recognized as such; any other value is coerced to `custom_api`."""
DEFAULT_SOURCE = "custom_api"
EXTERNAL_ID_MAX = 255
BODY_MAX = 100_000
TEAM_MAX = 120
URL_MAX = 2048
METADATA_DEPTH_MAX = 16
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

SEVERITY_ALIASES: Mapping[str, Severity] = {
    "p1": Severity.CRITICAL, "p2": Severity.HIGH, "p3": Severity.MEDIUM, "p4": Severity.LOW,
    **{severity.value: severity for severity in Severity},
}
"""`p1`–`p4` (the ingestion docs' values) and the canonical words, case-insensitive."""
DEFAULT_SEVERITY = Severity.MEDIUM
"""The docs' default `p3`."""

FIELDS = frozenset({"source", "external_id", "title", "body", "severity", "team", "external_url", "metadata",
                    "source_created_at", "source_updated_at", "connector_id"})
_FORBIDDEN_TEXT = re.compile("[\x00\ud800-\udfff]")
_URL = re.compile(r"^https?://\S+$")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
"""A field name safe to repeat in a reason (stored in the job's event)."""
_CONNECTOR_ID = re.compile(r"^con_[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")


class Rejected(InvalidValue):
    """A record that cannot become an issue: `field` and `reason` say why (`str(exc)` is "field: reason")."""


class CanonicalRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One signal as an issue. UNSET fields were not given: an update leaves them as they are, a new issue takes
    the default (body "", severity medium, no team/url, empty metadata)."""

    source: str
    external_id: str | None
    title: str
    body: str | msgspec.UnsetType = msgspec.UNSET
    severity: Severity | msgspec.UnsetType = msgspec.UNSET
    team: str | None | msgspec.UnsetType = msgspec.UNSET
    external_url: str | None | msgspec.UnsetType = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET
    source_created_at: datetime | None = None
    source_updated_at: datetime | None = None
    connector_id: str | None = None


def normalize_source(value: object) -> str:
    """A recognized source as itself (lower case), anything else (or nothing) as `custom_api`."""
    if value is None:
        return DEFAULT_SOURCE
    if not isinstance(value, str):
        raise Rejected("source", "must be a string")
    lowered = value.strip().lower()
    return lowered if lowered in KNOWN_SOURCES else DEFAULT_SOURCE


def normalize_severity(value: object) -> Severity:
    if isinstance(value, str) and (found := SEVERITY_ALIASES.get(value.strip().lower())) is not None:
        return found
    raise Rejected("severity", "must be one of p1, p2, p3, p4 (or critical, high, medium, low)")


def normalize_record(raw: object) -> CanonicalRecord:
    """A canonical record (an `/v1/ingest/events` body, a batch record) checked and normalized."""
    if not isinstance(raw, dict):
        raise Rejected("record", "must be a JSON object")
    unknown = sorted(str(key) for key in raw if key not in FIELDS)
    if unknown:
        name = unknown[0]
        raise Rejected(name if _PLAIN_NAME.match(name) else "record", "unknown field")
    external_id = optional_text(raw.get("external_id"), "external_id", EXTERNAL_ID_MAX)
    title = optional_text(raw.get("title"), "title", None)
    fields: dict[str, Any] = {}
    if "body" in raw:
        fields["body"] = optional_text(raw["body"], "body", BODY_MAX) or ""
    if "severity" in raw:
        fields["severity"] = DEFAULT_SEVERITY if raw["severity"] is None else normalize_severity(raw["severity"])
    if "team" in raw:
        fields["team"] = optional_text(raw["team"], "team", TEAM_MAX)
    if "external_url" in raw:
        fields["external_url"] = url(raw["external_url"], "external_url")
    if "metadata" in raw:
        fields["metadata"] = metadata(raw["metadata"], "metadata")
    return CanonicalRecord(
        source=normalize_source(raw.get("source")), external_id=external_id, title=issue_title(title, external_id),
        source_created_at=instant(raw.get("source_created_at"), "source_created_at"),
        source_updated_at=instant(raw.get("source_updated_at"), "source_updated_at"),
        connector_id=connector_ref(raw.get("connector_id")), **fields)


def issue_title(title: str | None, external_id: str | None) -> str:
    """The title, or the external id when there is none; 1–300 characters."""
    chosen = title or external_id
    if not chosen:
        raise Rejected("title", "required when external_id is absent")
    if len(chosen) > TITLE_MAX:
        raise Rejected("title", f"must be at most {TITLE_MAX} characters")
    return chosen


def optional_text(value: object, field: str, limit: int | None) -> str | None:
    """A string stripped of surrounding blanks (blank → None), or None; anything else is rejected."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Rejected(field, "must be a string")
    check_text(value, field)
    value = value.strip()
    if limit is not None and len(value) > limit:
        raise Rejected(field, f"must be at most {limit} characters")
    return value or None


def check_text(value: str, field: str) -> None:
    """Postgres text holds no NUL and UTF-8 no lone surrogate (ASCII text, the common case, needs no regex)."""
    if "\x00" in value if value.isascii() else _FORBIDDEN_TEXT.search(value) is not None:
        raise Rejected(field, "must not contain NUL or lone surrogates")


def url(value: object, field: str) -> str | None:
    text = optional_text(value, field, URL_MAX)
    if text is not None and not _URL.match(text):
        raise Rejected(field, "must be an http(s) URL")
    return text


def connector_ref(value: object) -> str | None:
    text = optional_text(value, "connector_id", 40)
    if text is not None and not _CONNECTOR_ID.match(text):
        raise Rejected("connector_id", "must be a connector id (con_…)")
    return None if text is None else text.upper().replace("CON_", "con_", 1)


def metadata(value: object, field: str) -> Metadata:
    """Any JSON object, stored as-is (null is an empty object); text and nesting within the input policy."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Rejected(field, "must be a JSON object")
    _check_json(value, field, 1)
    return value


def _check_json(value: object, field: str, depth: int) -> None:
    if isinstance(value, str):
        check_text(value, field)
    elif isinstance(value, dict | list):
        if depth > METADATA_DEPTH_MAX:
            raise Rejected(field, f"nested deeper than {METADATA_DEPTH_MAX} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                check_text(key, field)
            _check_json(item, field, depth + 1)
    elif not (value is None or isinstance(value, bool | int | float)):
        raise Rejected(field, "must hold JSON values only")


def instant(value: object, field: str) -> datetime | None:
    """An ISO 8601 / RFC 3339 datetime with an offset (Jira's `+0000` too), in UTC, in [1900, 9000)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise Rejected(field, "must be an ISO 8601 datetime with a UTC offset") from None
    else:
        raise Rejected(field, "must be an ISO 8601 datetime string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise Rejected(field, "must carry a UTC offset (e.g. 2026-01-31T12:00:00Z)")
    try:
        normalized = parsed.astimezone(UTC)
    except OverflowError:
        raise Rejected(field, "must lie between 1900 and 9000") from None
    if not EARLIEST <= normalized < LATEST:
        raise Rejected(field, "must lie between 1900 and 9000")
    return normalized


def epoch_instant(value: object, field: str) -> datetime | None:
    """Seconds or milliseconds since the epoch (a number or a string of digits), as providers send them."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return instant(value, field)
    seconds = value / 1000 if value > 100_000_000_000 else value
    try:
        return instant(datetime.fromtimestamp(seconds, UTC), field)
    except (OverflowError, OSError, ValueError):
        raise Rejected(field, "must be a valid epoch timestamp") from None
