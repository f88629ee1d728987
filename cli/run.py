"""Run the HTTP API and workers in one asyncio loop, and stop them all together on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator, Mapping

import uvicorn
import uvloop
from litestar import Litestar

from adapters.heap import freeze_startup_objects
from adapters.settings import Settings
from cli.http_protocol import BoundedHttpToolsProtocol

log = logging.getLogger(__name__)

Worker = Callable[[asyncio.Event], Awaitable[None]]


class ApiServer(uvicorn.Server):
    """uvicorn without signal handlers of its own: `run` owns them, so one signal stops API and workers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def api_server(app: Litestar, settings: Settings) -> ApiServer:
    """`proxy_headers=False`: uvicorn would otherwise replace the peer by X-Forwarded-For for loopback peers (or
    FORWARDED_ALLOW_IPS); the app decides alone, from TRUSTED_PROXIES (api/core/client_ip.py)."""
    config = uvicorn.Config(app, host="0.0.0.0", port=settings.port, access_log=False, loop="uvloop",
                            http=BoundedHttpToolsProtocol, log_level=settings.log_level.lower(),
                            proxy_headers=False)
    return ApiServer(config)


def run(server: ApiServer | None, workers: Mapping[str, Worker]) -> None:
    """Block until a signal, or until any part fails (which stops the rest and is raised here)."""
    loop_factory = (server.config.get_loop_factory() if server else None) or uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_supervise(server, workers))


async def _supervise(server: ApiServer | None, workers: Mapping[str, Worker]) -> None:
    freeze_startup_objects()  # the API's lifespan freezes again once its pools are open
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(_worker(name, work, stopping), name=name) for name, work in workers.items()]
    if server is not None:
        tasks.append(asyncio.create_task(_serve(server), name="api"))

    def shutdown() -> None:
        stopping.set()
        if server is not None:
            server.should_exit = True

    def on_signal() -> None:
        if stopping.is_set():  # a second Ctrl-C: stop waiting for in-flight work
            if server is not None:
                server.force_exit = True
            for task in tasks:
                task.cancel()
        shutdown()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        shutdown()  # whichever part ended first, by a signal or a failure, the others follow it
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def _worker(name: str, worker: Worker, stopping: asyncio.Event) -> None:
    try:
        await worker(stopping)
    except Exception:
        log.exception("%s failed; stopping everything", name)
        raise
    if not stopping.is_set():
        raise RuntimeError(f"{name} stopped on its own")


async def _serve(server: ApiServer) -> None:
    try:
        await server.serve()
    except SystemExit as exc:  # uvicorn exits when it cannot start (port in use, failing lifespan)
        raise RuntimeError(f"the API could not start on port {server.config.port} (see the log)") from exc
    if not server.should_exit:
        raise RuntimeError("the API stopped on its own")
