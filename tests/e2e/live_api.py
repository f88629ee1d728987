"""The real API under the real server (uvicorn, as `causeloop api` runs it) on a free port, in a thread of its own,
for tests whose client blocks: the relay and projectors run beside it (the `workers` fixture)."""

from __future__ import annotations

import socket
import threading

from adapters.settings import Settings
from api.app import create_app
from cli.run import api_server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LiveApi:
    """`with LiveApi(settings) as api:` serves until the block ends; `api.url` is its base URL."""

    def __init__(self, settings: Settings) -> None:
        self.server = api_server(create_app(settings, configure_logging=False), settings)
        self.url = f"http://127.0.0.1:{settings.port}"
        self._thread = threading.Thread(target=self.server.run, name="live-api", daemon=True)

    def __enter__(self) -> LiveApi:
        self._thread.start()
        started = threading.Event()
        while not self.server.started:
            assert self._thread.is_alive(), "the API server stopped while starting (see the log)"
            started.wait(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self._thread.join(30)
