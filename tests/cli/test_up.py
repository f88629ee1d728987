"""`causeloop up` end to end: it serves, another shell's `causeloop token` finds it, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import msgspec
import psycopg
import pytest

from adapters.settings import Settings
from cli.embedded import free_port
from tests.conftest import delete_stream

pytestmark = [pytest.mark.postgres, pytest.mark.nats]

CAUSELOOP = str(Path(sys.executable).parent / "causeloop")
READY_LINE = "Uvicorn running on"


@pytest.fixture
def up_environ(settings: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Its own schema, stream and subject prefix, so its relay never feeds the other tests' projectors."""
    run = uuid.uuid4().hex[:8]
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": settings.database_url,
        "DATABASE_SCHEMA": f"up_{run}",
        "NATS_URL": settings.nats_url,
        "NATS_STREAM": f"CLUP_{run}",
        "SUBJECT_PREFIX": f"clup_{run}",
        "PORT": str(free_port(0)),
        "DATA_DIR": str(tmp_path / "data"),
    }
    yield environ
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{environ["DATABASE_SCHEMA"]}" CASCADE')
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, delete_stream(msgspec.structs.replace(settings, nats_stream=environ["NATS_STREAM"])))


def wait_for_line(process: subprocess.Popen[str], text: str, timeout: float) -> str:
    """Reads stderr until `text` shows up; returns what was read (for the failure message)."""
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                line = process.stderr.readline()
                seen.append(line)
                if text in line or not line:
                    break
    return "".join(seen)


def test_up_serves_shares_its_servers_with_token_and_stops_cleanly_on_ctrl_c(up_environ: dict[str, str]) -> None:
    data_dir = Path(up_environ["DATA_DIR"])
    process = subprocess.Popen([CAUSELOOP, "up"], env=up_environ, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = wait_for_line(process, READY_LINE, timeout=60)
        assert READY_LINE in log, log
        without_url = {key: value for key, value in up_environ.items() if key != "DATABASE_URL"}
        token = subprocess.run([CAUSELOOP, "token", "--email", "up@example.com"], env=without_url,
                               capture_output=True, text=True, timeout=60, check=True).stdout.strip()
        health = httpx.get(f"http://127.0.0.1:{up_environ['PORT']}/health", timeout=5)
        issues = httpx.get(f"http://127.0.0.1:{up_environ['PORT']}/v1/issues", timeout=5,
                           headers={"Authorization": f"Bearer {token}"})
        grouped = _grouped_by_the_detector(int(up_environ["PORT"]), token)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)

    assert (health.status_code, issues.status_code) == (200, 200)
    assert grouped["issue_count"] == 2, grouped  # the pattern detector runs inside `up`
    assert process.returncode == 0, err
    assert f"http://localhost:{up_environ['PORT']}/docs" in out
    assert "causeloop token --email you@example.com" in out
    assert not (data_dir / "services.env").exists()


def _grouped_by_the_detector(port: int, token: str) -> dict[str, object]:
    """Two issues of one failure through the API; the pattern they end up in, once the detector linked both."""
    base, headers = f"http://127.0.0.1:{port}/v1", {"Authorization": f"Bearer {token}"}
    ids = [httpx.post(f"{base}/issues", json={"title": f"Timeout calling ledger-api after {ms}ms"}, headers=headers,
                      timeout=10).json()["id"] for ms in (3000, 4500)]
    deadline = time.monotonic() + 30
    while True:
        linked = [httpx.get(f"{base}/issues/{issue_id}", headers=headers, timeout=5).json()["pattern_id"]
                  for issue_id in ids]
        if linked[0] is not None and linked[0] == linked[1]:
            pattern: dict[str, object] = httpx.get(f"{base}/patterns/{linked[0]}", headers=headers, timeout=5).json()
            if pattern["issue_count"] == 2:
                return pattern
        assert time.monotonic() < deadline, f"the detector did not group the issues: {linked}"
        time.sleep(0.2)
