"""Builders for tests: fixed clock values, actors and event streams."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from domain.events import Actor, ActorKind, Meta
from domain.ids import WorkspaceId
from domain.issues.events import IssueOpened
from domain.issues.issue import open_issue

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
T2 = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
ALICE = Actor(kind=ActorKind.USER, id="usr_01KV1PX3NR96XJRGD48NNHH431")
WS = WorkspaceId("ws_01KV1PX3NQ3B497SHK7JTNT525")
ISSUE = uuid.UUID("01949a3c-0000-7000-8000-000000000001")


def meta(at: datetime = T1, workspace_id: WorkspaceId = WS) -> Meta:
    return Meta(workspace_id=workspace_id, actor=ALICE, now=at)


def opened(issue_id: uuid.UUID = ISSUE, at: datetime = T0, title: str = "Payment gateway timeout") -> IssueOpened:
    return open_issue(issue_id=issue_id, meta=meta(at), title=title)
