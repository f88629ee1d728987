"""Causeloop's own processes for tests that need them real (a kill, two API replicas): start, wait, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from adapters.settings import Settings

CAUSELOOP = str(Path(sys.executable).parent / "causeloop")


def environ(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points a process at `settings` (schema, stream, port), the rate limit out of the way."""
    return {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": settings.database_url,
            "DATABASE_SCHEMA": settings.database_schema, "NATS_URL": settings.nats_url,
            "NATS_STREAM": settings.nats_stream, "SUBJECT_PREFIX": settings.subject_prefix,
            "PORT": str(settings.port), "RATE_LIMIT_PER_MINUTE": "1000000", "LOG_LEVEL": "WARNING", **extra}


def start(settings: Settings, *args: str, **extra: str) -> subprocess.Popen[bytes]:
    """`causeloop ARGS…` with `settings` (and `extra` environment variables)."""
    return subprocess.Popen([CAUSELOOP, *args], env=environ(settings, **extra), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def serving(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
