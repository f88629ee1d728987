"""The Postgres event store: the `eventsourcing` library's recorder behind a msgspec mapper."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    JSONTranscoder,
    Mapper,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import AsyncConnection, Cursor
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier

from adapters import codec
from adapters.idempotency import CLAIM_LOST_SQLSTATE, RECORD_STEP, ClaimLost, StepRecord
from adapters.settings import Settings
from domain.events import DomainEvent

APPLICATION_NAME = "causeloop"
EVENTS_TABLE = f"{APPLICATION_NAME}_events"

__all__ = ["EVENTS_TABLE", "EventStore", "IntegrityError", "event_store_env", "read_head", "read_log", "store_id"]

_SEARCH_PATH: Final = "SELECT set_config('search_path', %s, true)"
_INSERT_BINARY: Final = ("INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
                         " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
                         " RETURNING notification_id")
_LOAD_MANY: Final = ("SELECT originator_id, state FROM {schema}.{table} WHERE originator_id = ANY(%b::uuid[])"
                     " ORDER BY originator_id, originator_version")
_READ_LOG: Final = (f"SELECT notification_id, state FROM {EVENTS_TABLE} WHERE notification_id > %s"
                    " ORDER BY notification_id LIMIT %s")


def event_store_env(settings: Settings, *, create_table: bool = False, pool_size: int = 5) -> dict[str, str]:
    """The library's configuration, built from our Settings; never read from os.environ."""
    info = conninfo_to_dict(settings.database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(info.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(info.get("port") or "5432"),
        "POSTGRES_USER": str(info.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(info.get("password") or ""),
        "POSTGRES_SCHEMA": settings.database_schema,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_LOCK_TIMEOUT": "10",
        "CREATE_TABLE": "yes" if create_table else "no",
        "APPLICATION_RECORDER_TOPIC": f"{__name__}:StepRecordingRecorder",
    }


Outcome = tuple[int, int, StepRecord]
"""`events[start:stop]` of an append are one idempotency step, whose result commits with them."""


class StepRecordingRecorder(PostgresApplicationRecorder):
    """The library's recorder, which also records idempotency steps inside the append's transaction, right after
    the events (their positions are known then). A step whose claim was lost raises in Postgres, so the whole
    transaction aborts: its events are not committed either."""

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        """The library's insert (table lock, NOTIFY, one INSERT of all the events), with the rows sent as four
        binary arrays instead of one text array of composites: psycopg's text dumper escapes every field with
        regexes, which cost more than Postgres's insert for a batch of hundreds of events."""
        self._lock_table(curs)
        self._notify_channel(curs)
        statement = SQL(_INSERT_BINARY).format(schema=Identifier(self.datastore.schema),
                                               table=Identifier(self.events_table_name))
        curs.execute(statement, ([event.originator_id for event in stored_events],
                                 [event.originator_version for event in stored_events],
                                 [event.topic for event in stored_events],
                                 [event.state for event in stored_events]))

    def _fetch_ids_after_insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        outcomes: Sequence[Outcome] = kwargs.get("outcomes", ())
        if ids is not None and outcomes:
            statement = SQL(RECORD_STEP).format(schema=Identifier(self.datastore.schema))
            for start, stop, record in outcomes:
                curs.execute(statement, record.params(max(ids[start:stop])))
            curs.fetchall()  # the pipeline syncs here: a lost claim raises now, inside the transaction
        return ids


class MsgspecMapper(Mapper[UUID]):
    """Stores each event as its type name (the topic) and the codec's JSON (the state)."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=type(domain_event).__name__,
            state=codec.encode(domain_event),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return codec.decode(stored_event.state)


class _StoreApplication(Application[UUID]):
    name = APPLICATION_NAME

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(transcoder=JSONTranscoder())


class EventStore:
    """Append, load a stream, and read the global log in position (notification id) order."""

    def __init__(self, settings: Settings | None, *, create_table: bool = False, pool_size: int = 5) -> None:
        """`settings` None: an in-memory store (the library's POPO recorder), for fast command tests."""
        env: Mapping[str, str] = {"PERSISTENCE_MODULE": "eventsourcing.popo"} if settings is None else \
            event_store_env(settings, create_table=create_table, pool_size=pool_size)
        self._app = _StoreApplication(env=env)
        self._schema = "" if settings is None else settings.database_schema

    @property
    def recorder(self) -> ApplicationRecorder:
        return self._app.recorder

    def append(self, events: Sequence[DomainEvent], outcomes: Sequence[Outcome] = ()) -> list[int]:
        """One transaction for all `events` (and the idempotency steps they complete); returns their positions.

        Raises IntegrityError on a version clash, ClaimLost when a step's claim was taken over."""
        if outcomes and not isinstance(self.recorder, StepRecordingRecorder):
            raise TypeError("idempotency steps are recorded by the Postgres store only")
        stored = [self._app.mapper.to_stored_event(event) for event in events]
        try:
            ids = self.recorder.insert_events(stored, outcomes=outcomes) if outcomes else \
                self.recorder.insert_events(stored)
        except (PersistenceError, psycopg.Error) as exc:
            cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
            if isinstance(cause, psycopg.Error) and cause.sqlstate == CLAIM_LOST_SQLSTATE:
                raise ClaimLost(str(cause)) from None
            raise
        return list(ids or ())

    def load(self, stream_id: UUID, up_to: int | None = None) -> list[codec.AnyEvent]:
        """The stream's events in order, up to version `up_to` when given."""
        return [codec.decode(n.state) for n in self._app.recorder.select_events(stream_id, lte=up_to)]

    def load_many(self, stream_ids: Collection[UUID]) -> dict[UUID, list[codec.AnyEvent]]:
        """Several streams' events in one round trip (a batch command loads hundreds): {stream id: events in order},
        streams without events absent."""
        if not stream_ids:
            return {}
        recorder = self._app.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            found = {stream_id: self.load(stream_id) for stream_id in stream_ids}
            return {stream_id: events for stream_id, events in found.items() if events}
        statement = SQL(_LOAD_MANY).format(schema=Identifier(recorder.datastore.schema),
                                           table=Identifier(recorder.events_table_name))
        streams: dict[UUID, list[codec.AnyEvent]] = {}
        with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(statement, (list(stream_ids),), binary=True)
            for originator_id, state in cur.fetchall():
                streams.setdefault(originator_id, []).append(codec.decode(bytes(state)))
        return streams

    def read(self, after: int, limit: int) -> list[tuple[int, codec.AnyEvent]]:
        notifications = self._app.recorder.select_notifications(after, limit, inclusive_of_start=False)
        return [(n.id, codec.decode(n.state)) for n in notifications]

    def read_types(self, after: int, limit: int, types: Collection[str]
                   ) -> tuple[int, list[tuple[int, codec.AnyEvent]]]:
        """Up to `limit` positions after `after`: the last position read (`after` when none) and the events among
        them whose type is one of `types`, decoded (the others are skipped undecoded)."""
        notifications = self._app.recorder.select_notifications(after, limit, inclusive_of_start=False)
        last = notifications[-1].id if notifications else after
        return last, [(n.id, codec.decode(n.state)) for n in notifications if n.topic in types]

    def read_raw(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        notifications = self._app.recorder.select_notifications(after, limit, inclusive_of_start=False)
        return [(n.id, n.state) for n in notifications]

    def head(self) -> int:
        return self._app.recorder.max_notification_id() or 0

    def close(self) -> None:
        self._app.close()


async def read_log(conn: AsyncConnection[Any], after: int, limit: int) -> list[tuple[int, bytes]]:
    """`EventStore.read_raw` on an async connection whose search_path is the store's schema: the relay reads on
    its leadership session, without a thread hop and a pooled connection per page. The library's table lock on
    append makes positions commit in order, so the log read after a position never skips a later commit."""
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(_READ_LOG, (after, limit), binary=True)
        return [(int(position), bytes(state)) for position, state in await cur.fetchall()]


async def read_head(conn: AsyncConnection[Any]) -> int:
    """The highest position stored (0 when empty): one backward step on the notification id's unique index."""
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}")
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def store_id(conn: AsyncConnection[Any]) -> str:
    """This event store's id, made once by `migrate` (table `store_identity`): the relay stamps it on every message
    and projectors apply only messages that carry it."""
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute("SELECT store_id FROM store_identity")
        row = await cur.fetchone()
        if row is None:
            raise RuntimeError("the event store has no id: run `causeloop migrate`")
        return str(row[0])
