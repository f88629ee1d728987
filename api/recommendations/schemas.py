"""Request bodies of the Recommendations resource (responses are the read model's structs)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

from api.core.input_policy import RequestBody


class StatusInput(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    IMPLEMENTED = "implemented"
    DISMISSED = "dismissed"


class UpdateRecommendationRequest(RequestBody, kw_only=True):
    status: StatusInput


class UpdateStepRequest(RequestBody, kw_only=True):
    completed: bool


class DismissRequest(RequestBody, kw_only=True):
    reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
