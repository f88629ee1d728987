"""What the provider client tests share: an HTTP client whose sleeps are recorded instead of slept (the local
provider server is the `server` fixture of tests/adapters/conftest.py)."""

from __future__ import annotations

from typing import Any

from adapters.providers.http import Http, Policy


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def http(sleeps: Sleeps | None = None, **policy: Any) -> Http:
    return Http(Policy(**{"timeout_s": 2.0, **policy}), sleep=sleeps if sleeps is not None else Sleeps())
