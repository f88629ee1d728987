"""compose.yaml stays valid and keeps the deployment's shape (validated without Docker)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = shutil.which("docker-compose")


@pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed (./dev test installs it with apt)")
def test_compose_file_is_valid_and_has_every_service() -> None:
    assert COMPOSE is not None
    done = subprocess.run([COMPOSE, "-f", str(ROOT / "compose.yaml"), "config", "--services"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) == {
        "postgres", "nats-1", "nats-2", "nats-3", "migrate", "api-1", "api-2", "relay", "relay-standby",
        "projector", "projector-standby", "webhooks-1", "webhooks-2",
        "sync-worker-1", "sync-worker-2", "pattern-detector", "pattern-detector-standby",
        "recommender", "recommender-standby", "prediction-worker", "prediction-worker-standby", "channels",
    }
