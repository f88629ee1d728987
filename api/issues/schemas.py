"""Request and response bodies of the Issues resource (api.md section B "Issues")."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from api.core.input_policy import RequestBody
from domain.issues.events import Severity, Status

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Body = Annotated[str, msgspec.Meta(max_length=100_000)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Source = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{1,40}$")]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=2048)]
UserRef = Annotated[str, msgspec.Meta(pattern=r"^(usr|sa)_[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")]
PatternRef = Annotated[str, msgspec.Meta(pattern=r"^pat_[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")]
CommentBody = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]


class SeverityInput(StrEnum):
    """Canonical words, or the p1–p4 aliases (p1 = critical … p4 = low)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    P1 = "p1"
    P2 = "p2"
    P3 = "p3"
    P4 = "p4"

    def canonical(self) -> Severity:
        return _ALIASES.get(self) or Severity(self.value)


_ALIASES = {SeverityInput.P1: Severity.CRITICAL, SeverityInput.P2: Severity.HIGH, SeverityInput.P3: Severity.MEDIUM,
            SeverityInput.P4: Severity.LOW}



class OpenIssueRequest(RequestBody, kw_only=True):
    title: Title
    body: Body | None = None
    severity: SeverityInput = SeverityInput.MEDIUM
    source: Source = "manual"
    external_id: ExternalId | None = None
    team: Label | None = None
    assignee_id: UserRef | None = None
    external_url: Url | None = None
    metadata: dict[str, Any] | None = None
    source_created_at: datetime | None = None


class UpdateIssueRequest(RequestBody, kw_only=True):
    title: Title | msgspec.UnsetType = msgspec.UNSET
    body: Body | None | msgspec.UnsetType = msgspec.UNSET
    severity: SeverityInput | msgspec.UnsetType = msgspec.UNSET
    status: Status | msgspec.UnsetType = msgspec.UNSET
    team: Label | None | msgspec.UnsetType = msgspec.UNSET
    assignee_id: UserRef | None | msgspec.UnsetType = msgspec.UNSET
    external_url: Url | None | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class CommentRequest(RequestBody, kw_only=True):
    body: CommentBody


class LinkPatternRequest(RequestBody, kw_only=True):
    pattern_id: PatternRef


class BulkOperation(StrEnum):
    SET_STATUS = "set_status"
    ASSIGN = "assign"
    SET_TEAM = "set_team"
    LINK_PATTERN = "link_pattern"


class BulkRequest(RequestBody, kw_only=True):
    ids: Annotated[list[str], msgspec.Meta(min_length=1, max_length=100)]
    op: BulkOperation
    value: str | None = None


class BulkError(msgspec.Struct, kw_only=True):
    code: str
    message: str


class BulkResult(msgspec.Struct, kw_only=True):
    id: str
    ok: bool
    version: int | None = None
    error: BulkError | None = None


class BulkResponse(msgspec.Struct, kw_only=True):
    results: list[BulkResult]
