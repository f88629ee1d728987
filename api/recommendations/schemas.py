"""Request bodies of the Recommendations resource (responses are the read model's structs)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

from api.core.input_policy import RequestBody
from domain.recommendations.tickets import PROJECT_PATTERN, SUPPORTED


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


class PushRequest(RequestBody, kw_only=True):
    """Where to create the recommendation's ticket."""

    tracker: Annotated[str, msgspec.Meta(max_length=40, extra_json_schema={"enum": list(SUPPORTED)},
                                         description="The issue tracker: `jira` or `github` (the workspace needs a "
                                                     "connector of that type with credentials)")]
    project: Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=PROJECT_PATTERN,
                                         description="The Jira project key (e.g. `RISK`), or the GitHub repository "
                                                     "as `owner/repo`")]
