"""`causeloop webhooks`: run the delivery worker alone, or redeliver one delivery (an operator's command)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg

from adapters.event_store import EventStore
from adapters.postgres import WRITER_ROLE
from adapters.secret_box import cached_box
from adapters.settings import Settings
from cli.token import UsageError
from commands.caller import Caller
from commands.errors import NotFound
from commands.group_commit import GroupCommitter
from commands.runner import CommandRunner
from commands.webhooks import BOX_PURPOSE, WebhookCommands
from domain.events import Actor, ActorKind
from domain.ids import WorkspaceId, canonical

OPERATOR = Actor(kind=ActorKind.SYSTEM, id="cli")


def find_delivery(settings: Settings, delivery_id: str) -> tuple[str, str]:
    """(workspace_id, webhook_id) of a delivery, across workspaces (as the writer role: RLS admits it)."""
    public_id = canonical("dlv", delivery_id)
    if public_id is None:
        raise UsageError(f"{delivery_id!r} is not a delivery id (dlv_…)")
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        conn.execute("SELECT set_config('role', %s, true)", (WRITER_ROLE,))
        row = conn.execute("SELECT workspace_id, endpoint_id FROM webhook_deliveries WHERE id = %s",
                           (public_id,)).fetchone()
    if row is None:
        raise UsageError(f"no delivery {public_id}")
    return str(row[0]), str(row[1])


def redeliver(settings: Settings, delivery_id: str) -> dict[str, object]:
    """Queue the delivery again (the delivery worker sends it): the same command as the API's redeliver route."""
    workspace_id, webhook_id = find_delivery(settings, delivery_id)
    public_id = canonical("dlv", delivery_id) or delivery_id
    store = EventStore(settings, pool_size=1)

    async def run() -> int:
        committer = GroupCommitter(store)
        try:
            commands = WebhookCommands(CommandRunner(store, committer), cached_box(settings, BOX_PURPOSE),
                                       overlap=timedelta(seconds=settings.webhooks_secret_overlap_s))
            result = await commands.redeliver(Caller(workspace_id=WorkspaceId(workspace_id), actor=OPERATOR),
                                              webhook_id, public_id)
            return result.position
        finally:
            committer.close()

    try:
        position = asyncio.run(run())
    except NotFound:
        raise UsageError(f"the webhook {webhook_id} of delivery {public_id} is deleted") from None
    finally:
        store.close()
    return {"delivery_id": public_id, "webhook_id": webhook_id, "workspace_id": workspace_id, "status": "queued",
            "position": position}
