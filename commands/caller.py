"""Who issues a command: the workspace, the actor and the request context every event records."""

from __future__ import annotations

from datetime import datetime

import msgspec

from adapters.idempotency import Claim
from domain.events import Actor, Meta
from domain.ids import WorkspaceId


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: WorkspaceId
    actor: Actor
    correlation_id: str | None = None
    client_ip: str | None = None
    claim: Claim | None = None
    """The request's Idempotency-Key claim: the commands it runs are its steps (commands/runner.py)."""

    def meta(self, now: datetime) -> Meta:
        """The envelope metadata of events this caller causes at `now`."""
        return Meta(workspace_id=self.workspace_id, actor=self.actor, now=now,
                    correlation_id=self.correlation_id, client_ip=self.client_ip)
