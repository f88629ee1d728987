"""Outbound webhook endpoint commands: how each decides; loading, appending and retrying are the runner's.

The signing secret is generated here, sealed with the master key (owner: the endpoint's id) into the event, and
shown once through `Result.revealed`. URLs arrive already checked (adapters/webhook_targets.py, which needs DNS).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import cast
from uuid import UUID

from adapters.secret_box import SecretBox
from commands.caller import Caller
from commands.errors import NotFound
from commands.runner import CommandRunner, Context, Decision, Result
from domain.ids import parse, render
from domain.webhooks import endpoint as decide
from domain.webhooks.endpoint import EndpointEdit, WebhookEndpoint
from domain.webhooks.events import AnyWebhookEvent, WebhookEvent, WebhookPingRequested

BOX_PURPOSE = "webhook-secret"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_hex(24)


def webhook_id_of(result: Result) -> str:
    return render("whk", result.stream_id)


class WebhookCommands:
    """`box` is a factory: the master key is only needed (and only required in production) when webhooks are used."""

    def __init__(self, runner: CommandRunner, box: Callable[[], SecretBox], *, overlap: timedelta) -> None:
        self._runner = runner
        self._box = box
        self._overlap = overlap

    async def create(self, caller: Caller, *, url: str, event_types: list[str], connector_id: str | None,
                     description: str) -> Result:
        secret = new_secret()

        async def deciding(context: Context) -> Decision:
            stream_id = context.new_uuid()
            sealed = self._box().seal(secret, render("whk", stream_id))
            return Decision(stream_id, (), [decide.create_endpoint(
                stream_id=stream_id, meta=context.meta, url=url, event_types=event_types, connector_id=connector_id,
                description=description, secret_ciphertext=sealed)], revealed=secret)

        return await self._runner.run(caller, deciding)

    async def update(self, caller: Caller, webhook_id: str, edit: EndpointEdit,
                     expected_version: int | None = None) -> Result:
        return await self._on(caller, webhook_id, lambda endpoint, context: (
            decide.update_endpoint(endpoint, edit, context.meta), None), expected_version)

    async def delete(self, caller: Caller, webhook_id: str) -> Result:
        return await self._on(caller, webhook_id, lambda endpoint, context: (
            [decide.delete_endpoint(endpoint, context.meta)], None))

    async def rotate(self, caller: Caller, webhook_id: str) -> Result:
        """A new secret, shown once; the previous one keeps signing beside it for the overlap window."""
        secret = new_secret()

        def rotating(endpoint: WebhookEndpoint, context: Context) -> tuple[list[WebhookEvent], str | None]:
            sealed = self._box().seal(secret, render("whk", endpoint.id))
            return [decide.rotate_secret(endpoint, secret_ciphertext=sealed, overlap=self._overlap,
                                         meta=context.meta)], secret

        return await self._on(caller, webhook_id, rotating)

    async def ping(self, caller: Caller, webhook_id: str) -> tuple[Result, str]:
        """(result, the test delivery's id)."""
        delivery = render("dlv", self._runner.new_uuid())
        result = await self._on(caller, webhook_id, lambda endpoint, context: (
            [decide.request_ping(endpoint, delivery, context.meta)], None))
        last = result.stream[-1] if result.stream else None  # an idempotent replay answers the first ping's id
        return result, last.delivery_id if isinstance(last, WebhookPingRequested) else delivery

    async def redeliver(self, caller: Caller, webhook_id: str, delivery_id: str) -> Result:
        return await self._on(caller, webhook_id, lambda endpoint, context: (
            [decide.request_redelivery(endpoint, delivery_id, context.meta)], None))

    async def disable_for_failures(self, caller: Caller, webhook_id: str, *, failing_since: datetime,
                                   reason: str) -> Result:
        return await self._on(caller, webhook_id, lambda endpoint, context: (
            decide.disable_for_failures(endpoint, failing_since=failing_since, reason=reason, meta=context.meta),
            None))

    async def endpoint(self, caller: Caller, webhook_id: str) -> WebhookEndpoint | None:
        stream_id = parse("whk", webhook_id)
        if stream_id is None:
            return None
        current = _fold(await self._runner.load(stream_id, WebhookEvent))
        return None if current is None or current.deleted or current.workspace_id != caller.workspace_id else current

    def secret_of(self, endpoint: WebhookEndpoint) -> str:
        return self._box().open(endpoint.secret_ciphertext, render("whk", endpoint.id))

    def open_sealed(self, webhook_id: str, ciphertext: str) -> str:
        """A sealed secret in clear (for verifying a connector's inbound deliveries with its webhook's secret)."""
        return self._box().open(ciphertext, webhook_id)

    async def _on(self, caller: Caller, webhook_id: str,
                  rule: Callable[[WebhookEndpoint, Context], tuple[list[WebhookEvent], str | None]],
                  expected_version: int | None = None) -> Result:
        stream_id = parse("whk", webhook_id)

        async def deciding(context: Context) -> Decision:
            history: list[WebhookEvent] = [] if stream_id is None else await context.load(stream_id, WebhookEvent)
            current = _fold(history)
            if (current is None or stream_id is None or current.deleted
                    or current.workspace_id != caller.workspace_id):
                raise NotFound("webhook", webhook_id)
            events, revealed = rule(current, context)
            return Decision(stream_id, history, events, revealed=revealed)

        return await self._runner.run(caller, deciding, expected_version=expected_version)


def _fold(history: list[WebhookEvent]) -> WebhookEndpoint | None:
    return decide.project_endpoint(None, cast(list[AnyWebhookEvent], history))


def stream_of(webhook_id: str) -> UUID | None:
    return parse("whk", webhook_id)
