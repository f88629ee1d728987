"""Request bodies of the Patterns resource (responses are the read model's structs)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import msgspec

from api.core.input_policy import RequestBody
from projections.patterns.queries import DayCount


class PatternStatusInput(StrEnum):
    EMERGING = "emerging"
    ACTIVE = "active"
    MITIGATING = "mitigating"
    WATCHING = "watching"
    RESOLVED = "resolved"


class CreateStatus(StrEnum):
    EMERGING = "emerging"
    ACTIVE = "active"
    MITIGATING = "mitigating"
    RESOLVED = "resolved"


Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=50)]


class CreatePatternRequest(RequestBody, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    status: CreateStatus = CreateStatus.EMERGING
    fingerprint: dict[str, Any] | None = None
    """Free-form; `domain`, `service`, `component` and `error_signature` (strings) are kept."""
    tags: Annotated[list[Tag], msgspec.Meta(max_length=20)] = msgspec.field(default_factory=list)
    issue_ids: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=100)] = (
        msgspec.field(default_factory=list))
    risk_score: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    confidence: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5


class UpdatePatternRequest(RequestBody, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | msgspec.UnsetType = msgspec.UNSET
    status: PatternStatusInput | msgspec.UnsetType = msgspec.UNSET
    tags: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=50)]],
                    msgspec.Meta(max_length=20)] | msgspec.UnsetType = msgspec.UNSET


class MergePatternRequest(RequestBody, kw_only=True):
    source_pattern_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Frequency(msgspec.Struct, kw_only=True):
    pattern_id: str
    window: str
    total: int
    data: list[DayCount]


class Tier(StrEnum):
    FAST = "fast"
    BALANCED = "balanced"
    DEEP = "deep"


class ReanalyzeRequest(RequestBody, kw_only=True):
    tier: Tier = Tier.BALANCED


class ReanalysisAccepted(msgspec.Struct, kw_only=True):
    issue_id: str
    tier: str
    status: str
    """`queued`: the detector groups the issue again within a second; its `pattern_id` changes only if the
    answer did."""
