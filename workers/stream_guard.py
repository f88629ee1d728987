"""Whether the relay may publish into its JetStream stream: checked once per relay term, never per message.

The stream must hold only this event store's messages (its first and last messages carry the store's id), and its
last message must be the store's own event at that position. Otherwise the relay refuses, saying what happened and
which operator action resolves it: publishing would mix two stores' positions, and projectors would skip events.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg

from adapters import codec
from adapters.event_store import read_head, read_log
from adapters.ids import event_id
from adapters.nats import POSITION_HEADER, STORE_HEADER
from adapters.postgres import AsyncConn
from adapters.settings import Settings

RESET = "causeloop relay reset-stream"


class StreamRefused(Exception):
    """The relay must not publish into the stream; the message says why and what resolves it."""


async def ends(js: JetStreamContext, stream: str) -> list[RawStreamMsg]:
    """The stream's first and last messages (one when they are the same, none when it is empty)."""
    state = (await js.stream_info(stream)).state
    if not state.messages:
        return []
    first = await js.get_msg(stream, seq=state.first_seq)
    return [first] if state.last_seq == state.first_seq else [first, await js.get_msg(stream, seq=state.last_seq)]


def owner(msg: RawStreamMsg) -> str | None:
    """The store id a message carries; None for a message published without one."""
    owner: str | None = (msg.headers or {}).get(STORE_HEADER)
    return owner


async def check(js: JetStreamContext, settings: Settings, conn: AsyncConn, store: str) -> None:
    """Raise StreamRefused unless the stream holds only `store`'s messages, the last one an event the store holds."""
    messages = await ends(js, settings.nats_stream)
    for msg in messages:
        if owner(msg) != store:
            raise StreamRefused(_foreign(settings, store, msg))
    if not messages:
        return
    last = messages[-1]
    headers = last.headers or {}
    text = str(headers.get(POSITION_HEADER, ""))
    position = int(text) if text.isdigit() else 0
    stored = await read_log(conn, position - 1, 1) if position else []
    if stored and stored[0][0] == position:
        event = codec.decode(stored[0][1])
        if str(event_id(event.originator_id, event.originator_version)) == headers.get("Nats-Msg-Id"):
            return
        raise StreamRefused(_ahead(settings, position, last, await read_head(conn), "holds another event there"))
    raise StreamRefused(_ahead(settings, position, last, await read_head(conn), "does not hold it"))


def _foreign(settings: Settings, store: str, msg: RawStreamMsg) -> str:
    whose = f"of event store {owner(msg)}" if owner(msg) else "without a store id"
    return (
        f"NATS stream {settings.nats_stream} holds messages {whose} (stream message {msg.seq}), and this "
        f"deployment's event store is {store}: the relay publishes nothing into it. If another deployment "
        f"publishes to that stream, give this one a stream of its own: set NATS_STREAM and SUBJECT_PREFIX to new "
        f"names, then restart the relay and the projectors. If the stream holds only this store's events "
        f"published before store ids existed, run `{RESET}` to empty it and republish them.")


def _ahead(settings: Settings, position: int, last: RawStreamMsg, head: int, what: str) -> str:
    return (
        f"NATS stream {settings.nats_stream} ends with this store's event at position {position} (stream message "
        f"{last.seq}), but the event store {what} (its head is {head}): the database was restored from an older "
        f"backup, or a copy of it publishes to the same stream. The relay publishes nothing into it. Run `{RESET}` "
        "to empty the stream and republish this store's events; see docs/operations.md.")
