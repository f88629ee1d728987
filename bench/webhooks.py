"""Outbound webhook delivery: event commit → the receiver has the signed POST, through the real pipeline (relay,
NATS, `causeloop webhooks run` deciding and sending) to a local asyncio receiver in this process."""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec

from adapters.event_store import EventStore
from adapters.secret_box import SecretBox
from adapters.settings import Settings
from bench.data import IssueFactory, Tenant
from bench.harness import VENV_BIN, BenchEnv, Proc
from commands.caller import Caller
from commands.group_commit import GroupCommitter
from commands.runner import CommandRunner
from commands.webhooks import BOX_PURPOSE, WebhookCommands
from domain.events import Actor, ActorKind
from domain.ids import WorkspaceId, render


class Receiver:
    """HTTP/1.1 keep-alive receiver on 127.0.0.1: answers 200 at once, keeps (arrival time, issue id)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, str]] = []
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="bench-receiver", daemon=True)
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=512)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                event_id = ""
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    elif name.lower() == b"x-causeloop-event-id":
                        event_id = value.strip().decode()
                body = await reader.readexactly(length)
                issue_id = msgspec.json.decode(body)["data"]["issue_id"]
                self.arrivals.append((time.time(), event_id, issue_id))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@dataclass
class Delivered:
    steady_rate: float
    latencies_ms: list[float] = field(default_factory=list)
    burst_events: int = 0
    burst_seconds: float = 0.0
    burst_rate: float = 0.0
    duplicates: int = 0
    missing: int = 0


def start_worker(env: BenchEnv, settings: Settings) -> Proc:
    return env.start("webhooks", [str(VENV_BIN / "causeloop"), "webhooks", "run"], env=env.child_env(settings))


def create_endpoint(settings: Settings, tenant: Tenant, url: str) -> str:
    store = EventStore(settings, pool_size=1)

    async def run() -> str:
        committer = GroupCommitter(store)
        try:
            commands = WebhookCommands(CommandRunner(store, committer),
                                       lambda: SecretBox(base64.b64decode(settings.causeloop_master_key),
                                                         BOX_PURPOSE), overlap=timedelta(hours=24))
            caller = Caller(workspace_id=WorkspaceId(tenant.workspace_id),
                            actor=Actor(kind=ActorKind.SYSTEM, id="bench"))
            result = await commands.create(caller, url=url, event_types=["issue.created"], connector_id=None,
                                           description="bench")
            return render("whk", result.stream_id)
        finally:
            committer.close()

    try:
        return asyncio.run(run())
    finally:
        store.close()


def webhook_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, webhooks_allow_private_targets=True,
                                   causeloop_master_key=base64.b64encode(os.urandom(32)).decode())


def measure(env: BenchEnv, settings: Settings, tenant: Tenant, receiver: Receiver, *, rate: float, seconds: float,
            burst: int, batch: int = 10, warmup: float = 2.0, timeout: float = 120) -> Delivered:
    """Once a first delivery got through (the worker is up), a steady phase (`rate` issues/s in transactions of
    `batch`, the first `warmup` seconds not counted): commit → arrival per issue; then a burst of `burst` issues
    appended as fast as the store takes them (500 per transaction): deliveries/s from the first commit to the last
    arrival."""
    factory = IssueFactory(tenant.workspace_id, tenant.user_id, seed=31)
    store = EventStore(settings, pool_size=2)
    committed: dict[str, float] = {}
    try:
        probe = factory.opened(datetime.now(UTC))
        store.append([probe])
        _wait_for(receiver, {render("iss", probe.originator_id)}, timeout)
        warm = int(rate * warmup / batch)
        started = time.monotonic()
        for i in range(warm + int(rate * seconds / batch)):
            if i == warm:
                committed.clear()
                measured_from = time.monotonic()
            delay = started + i * batch / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            events = [factory.opened(datetime.now(UTC)) for _ in range(batch)]
            store.append(events)
            now = time.time()
            committed.update((render("iss", event.originator_id), now) for event in events)
        steady_rate = len(committed) / (time.monotonic() - measured_from)
        _wait_for(receiver, set(committed), timeout)
        arrived = {issue: at for at, _, issue in receiver.arrivals}
        latencies = [(arrived[issue] - at) * 1000 for issue, at in committed.items() if issue in arrived]
        before = len(receiver.arrivals)
        burst_started = time.time()
        burst_ids: set[str] = set()
        for _ in range(burst // 500):
            events = [factory.opened(datetime.now(UTC)) for _ in range(500)]
            store.append(events)
            burst_ids.update(render("iss", event.originator_id) for event in events)
        _wait_for(receiver, burst_ids, timeout)
        last = max(at for at, _, issue in receiver.arrivals[before:] if issue in burst_ids)
    finally:
        store.close()
    seen = [event_id for _, event_id, _ in receiver.arrivals]
    expected = set(committed) | burst_ids
    got = {issue for _, _, issue in receiver.arrivals}
    return Delivered(steady_rate=steady_rate, latencies_ms=latencies, burst_events=len(burst_ids),
                     burst_seconds=last - burst_started, burst_rate=len(burst_ids) / (last - burst_started),
                     duplicates=len(seen) - len(set(seen)), missing=len(expected - got))


def _wait_for(receiver: Receiver, issues: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        missing = issues - {issue for _, _, issue in receiver.arrivals}
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(missing)} of {len(issues)} deliveries missing after {timeout:.0f} s")
        time.sleep(0.1)
