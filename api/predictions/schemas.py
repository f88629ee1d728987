"""Request bodies of predictions, alert rules and notifications (responses are the read models' structs)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from api.core.input_policy import RequestBody

Text200 = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Outcome(StrEnum):
    ACCURATE = "accurate"
    INACCURATE = "inaccurate"


class FeedbackRequest(RequestBody, kw_only=True):
    outcome: Outcome
    comment: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class DismissRequest(RequestBody, kw_only=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class ThresholdInput(RequestBody, kw_only=True):
    probability: Annotated[float, msgspec.Meta(ge=0, le=1)]
    window_days: Annotated[int, msgspec.Meta(ge=1, le=365)]


Channel = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class CreateAlertRuleRequest(RequestBody, kw_only=True):
    name: Text200
    scope: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    """`global`, or a pattern id (`pat_…`)."""
    threshold: ThresholdInput
    channels: Annotated[list[Channel], msgspec.Meta(max_length=20)] = msgspec.field(default_factory=list)
    enabled: bool = True
    snoozed_until: datetime | None = None


class UpdateAlertRuleRequest(RequestBody, kw_only=True):
    name: Text200 | msgspec.UnsetType = msgspec.UNSET
    scope: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | msgspec.UnsetType = msgspec.UNSET
    threshold: ThresholdInput | msgspec.UnsetType = msgspec.UNSET
    channels: Annotated[list[Channel], msgspec.Meta(max_length=20)] | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    snoozed_until: datetime | None | msgspec.UnsetType = msgspec.UNSET


class ReadAllRequest(RequestBody, kw_only=True):
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    """A type prefix, e.g. `prediction.`: only notifications whose type starts with it."""


class ReadAllResult(msgspec.Struct, kw_only=True):
    marked: int
    unread_count: int


class NotificationReadResult(msgspec.Struct, kw_only=True):
    id: str
    read: bool
    unread_count: int
