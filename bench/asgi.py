"""ASGI factories for `uvicorn --factory`: the real API (Settings from the environment) and a hello-world.

Both are served the same way (uvicorn, uvloop, httptools, no access log, same worker count), so the
hello-world is the ceiling of the server stack itself on this machine.
"""

from __future__ import annotations

import os

from litestar import Litestar, get


def api() -> Litestar:
    from adapters.settings import load_settings
    from api.app import create_app

    return create_app(load_settings(os.environ))


@get("/health", sync_to_thread=False)
def _health() -> dict[str, str]:
    return {"status": "ok"}


@get("/hello", sync_to_thread=False)
def _hello() -> dict[str, str]:
    return {"hello": "world"}


def hello() -> Litestar:
    return Litestar(route_handlers=[_health, _hello], debug=False)
