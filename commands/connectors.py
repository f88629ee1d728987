"""Connector and sync-run commands: configure connectors (credentials sealed), queue, start and finish runs."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import cast
from uuid import UUID

import msgspec

from adapters import cron
from adapters.ids import keyed_uuid
from adapters.secret_box import SecretBox
from commands.caller import Caller
from commands.errors import NotFound
from commands.runner import CommandRunner, Context, Decision, Result
from domain.connectors import connector as decide
from domain.connectors.connector import DEFAULT_SCHEDULE, Connector, ConnectorEdit, SyncRun
from domain.connectors.events import (
    AnyConnectorEvent,
    AnySyncRunEvent,
    Config,
    ConnectorEvent,
    Counts,
    Cursor,
    RunKind,
    SyncRunEvent,
)
from domain.errors import InvalidValue
from domain.events import DomainEvent, Meta
from domain.ids import parse, render

BOX_PURPOSE = "connector-credentials"
_json = msgspec.json.Encoder()


def check_schedule(schedule: str) -> str:
    schedule = " ".join(schedule.split())
    if not cron.is_valid(schedule):
        raise InvalidValue("schedule", "must be a five-field cron expression, e.g. */30 * * * *")
    return schedule


def connector_id_of(result: Result) -> str:
    return render("con", result.stream_id)


def run_id_of(result: Result) -> str:
    return render("run", result.stream_id)


class ConnectorCommands:
    """`box` is a factory: the master key is needed (and required in production) only when credentials are used."""

    def __init__(self, runner: CommandRunner, box: Callable[[], SecretBox]) -> None:
        self._runner = runner
        self._box = box

    def seal(self, connector_id: str, credentials: dict[str, str]) -> str:
        return self._box().seal(_json.encode(credentials).decode(), connector_id)

    def credentials_of(self, connector: Connector) -> dict[str, str]:
        """The clear credentials, for the provider client only (never a response, an event or a log)."""
        if connector.credentials_ciphertext is None:
            return {}
        opened = self._box().open(connector.credentials_ciphertext, render("con", connector.id))
        return cast(dict[str, str], msgspec.json.decode(opened))

    async def create(self, caller: Caller, *, connector_type: str, display_name: str | None, config: Config,
                     schedule: str | None, credentials: dict[str, str] | None) -> Result:
        connector_id = self._runner.new_uuid()
        public_id = render("con", connector_id)
        entry = decide.entry_of(connector_type)
        if credentials is not None:
            decide.check_against(entry.credentials_schema, credentials, "credentials")
        sealed = self.seal(public_id, credentials) if credentials else None
        cron_expr = check_schedule(schedule or DEFAULT_SCHEDULE)

        async def deciding(context: Context) -> Decision:
            return Decision(connector_id, (), [decide.create_connector(
                connector_id=connector_id, meta=context.meta, connector_type=connector_type,
                display_name=display_name, config=config, schedule=cron_expr, credentials_ciphertext=sealed)])

        return await self._runner.run(caller, deciding)

    async def reconfigure(self, caller: Caller, connector_id: str, *, display_name: str | msgspec.UnsetType,
                          config: Config | msgspec.UnsetType, schedule: str | msgspec.UnsetType,
                          credentials: dict[str, str] | msgspec.UnsetType, expected_version: int | None = None
                          ) -> Result:
        current, _ = await self.connector(caller, connector_id)
        sealed: str | msgspec.UnsetType = msgspec.UNSET
        if credentials is not msgspec.UNSET:
            decide.check_against(current.entry.credentials_schema, credentials, "credentials")
            sealed = self.seal(connector_id, credentials)
        edit = ConnectorEdit(display_name=display_name, config=config, credentials_ciphertext=sealed,
                             schedule=schedule if schedule is msgspec.UNSET else check_schedule(schedule))
        return await self._on_connector(caller, connector_id, lambda c, meta: decide.reconfigure(c, edit, meta),
                                        expected_version)

    async def pause(self, caller: Caller, connector_id: str) -> Result:
        return await self._on_connector(caller, connector_id, decide.pause)

    async def resume(self, caller: Caller, connector_id: str) -> Result:
        return await self._on_connector(caller, connector_id, decide.resume)

    async def delete(self, caller: Caller, connector_id: str) -> Result:
        return await self._on_connector(caller, connector_id, decide.delete)

    async def connector(self, caller: Caller, connector_id: str) -> tuple[Connector, list[ConnectorEvent]]:
        """The live connector of the caller's workspace, or NotFound."""
        stream_id = parse("con", connector_id)
        history = [] if stream_id is None else await self._runner.load(stream_id, ConnectorEvent)
        current = decide.project_connector(cast(list[AnyConnectorEvent], history))
        if current is None or current.deleted or current.workspace_id != caller.workspace_id:
            raise NotFound("connector", connector_id)
        return current, history

    async def rotate_signing_secret(self, caller: Caller, connector_id: str) -> Result:
        """A new inbound-webhook signing secret (`whsec_…`): sealed in the event, in clear only in `revealed`."""
        secret = "whsec_" + secrets.token_hex(24)
        sealed = self._box().seal(secret, f"{connector_id}:signing")

        async def deciding(context: Context) -> Decision:
            current, history = await self.connector(caller, connector_id)
            return Decision(current.id, history, decide.set_signing_secret(current, sealed, context.meta),
                            revealed=secret)

        return await self._runner.run(caller, deciding)

    def signing_secret_of(self, connector: Connector) -> str | None:
        if connector.signing_secret_ciphertext is None:
            return None
        return self._box().open(connector.signing_secret_ciphertext, f"{render('con', connector.id)}:signing")

    async def connector_anywhere(self, connector_id: str) -> Connector | None:
        """A live connector by id alone (an inbound webhook: the id in the path selects whose secret verifies)."""
        stream_id = parse("con", connector_id)
        history = [] if stream_id is None else await self._runner.load(stream_id, ConnectorEvent)
        current = decide.project_connector(cast(list[AnyConnectorEvent], history))
        return None if current is None or current.deleted else current

    @staticmethod
    def delivery_stream(connector_id: str, delivery_id: str) -> UUID:
        """An inbound delivery's ingestion job stream: the same for every replay of it (the key predates the job:
        deliveries recorded as `InboundDeliveryReceived` before sit in the same streams, so they stay replays)."""
        return keyed_uuid(connector_id, "inbound-delivery", delivery_id)

    async def queue_run(self, caller: Caller, connector_id: str, kind: RunKind, backfill_days: int | None = None,
                        run_key: str | None = None) -> Result:
        """A queued run for the sync worker. `run_key` makes the run's id deterministic (the scheduler's due time):
        two schedulers deciding the same due run append to the same new stream, and the second one conflicts."""
        run_uuid = keyed_uuid(caller.workspace_id, "sync-run", connector_id, run_key) if run_key else None

        async def deciding(context: Context) -> Decision:
            current, _ = await self.connector(caller, connector_id)
            run_id = run_uuid or context.new_uuid()
            return Decision(run_id, (), [decide.queue_run(current, run_id=run_id, connector_id=connector_id,
                                                          kind=kind, backfill_days=backfill_days,
                                                          meta=context.meta)])

        return await self._runner.run(caller, deciding)

    async def run(self, caller: Caller, run_id: str) -> tuple[SyncRun, list[SyncRunEvent]]:
        stream_id = parse("run", run_id)
        history = [] if stream_id is None else await self._runner.load(stream_id, SyncRunEvent)
        current = decide.project_run(cast(list[AnySyncRunEvent], history))
        if current is None or current.workspace_id != caller.workspace_id:
            raise NotFound("sync run", run_id)
        return current, history

    async def start_run(self, caller: Caller, run_id: str, worker: str) -> Result:
        return await self._on_run(caller, run_id, lambda run, _c, meta: decide.start_run(run, worker, meta))

    async def progress(self, caller: Caller, run_id: str, counts: Counts) -> Result:
        return await self._on_run(caller, run_id, lambda run, _c, meta: decide.progress(run, counts, meta))

    async def succeed(self, caller: Caller, run_id: str, counts: Counts, cursor: Cursor) -> Result:
        return await self._on_run(caller, run_id, lambda run, c, meta: decide.succeed(run, c, counts, cursor, meta))

    async def fail(self, caller: Caller, run_id: str, counts: Counts, error: str) -> Result:
        return await self._on_run(caller, run_id, lambda run, c, meta: decide.fail(run, c, counts, error, meta))

    async def _on_connector(self, caller: Caller, connector_id: str,
                            rule: Callable[[Connector, Meta], list[ConnectorEvent]],
                            expected_version: int | None = None) -> Result:
        async def deciding(context: Context) -> Decision:
            current, history = await self.connector(caller, connector_id)
            return Decision(current.id, history, rule(current, context.meta))

        return await self._runner.run(caller, deciding, expected_version=expected_version)

    async def _on_run(self, caller: Caller, run_id: str,
                      rule: Callable[[SyncRun, Connector | None, Meta], list[SyncRunEvent] | list[DomainEvent]]
                      ) -> Result:
        async def deciding(context: Context) -> Decision:
            current, history = await self.run(caller, run_id)
            stream_id = parse("con", current.connector_id)
            connector_history = [] if stream_id is None else await context.load(stream_id, ConnectorEvent)
            connector = decide.project_connector(cast(list[AnyConnectorEvent], connector_history))
            return Decision(current.id, history, rule(current, connector, context.meta))

        return await self._runner.run(caller, deciding)

