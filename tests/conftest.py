"""Session-wide test settings: one Postgres schema, one JetStream stream and one subject prefix per run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hypothesis.configuration
import nats
import psycopg
import pytest

from adapters.settings import Settings
from projections.schema import migrate

RUN_ID = uuid.uuid4().hex[:10]
_HYPOTHESIS_HOME = Path(tempfile.gettempdir()) / f"causeloop-hypothesis-{RUN_ID}"


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis keeps its files (example database, constants cache) in a temporary folder, never in the repo;
    set before collection, which already reads the constants."""
    hypothesis.configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)


def _test_settings() -> Settings:
    database_url = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    nats_url = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")
    return Settings(
        environment="test",
        database_url=database_url,
        database_schema=f"t_{RUN_ID}",
        nats_url=nats_url,
        nats_stream=f"CLTEST_{RUN_ID}",
        subject_prefix=f"cltest_{RUN_ID}",
        rate_limit_per_minute=100_000,
        read_your_writes_timeout_s=10.0,
    )


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    """Migrated once per run; the schema is dropped at the end so runs never see each other."""
    settings = _test_settings()
    try:
        migrate(settings)
    except psycopg.OperationalError as exc:
        pytest.exit(f"Postgres is not reachable at TEST_DATABASE_URL ({settings.database_url}): {exc}", returncode=3)
    yield settings
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE')
    with ThreadPoolExecutor(1) as pool:  # the session may end inside a running event loop
        pool.submit(asyncio.run, delete_stream(settings)).result()


async def delete_stream(settings: Settings) -> None:
    """The run's JetStream stream goes with its schema, so runs never pile up on a shared server."""
    try:
        client = await nats.connect(settings.nats_url, connect_timeout=2, max_reconnect_attempts=0)
    except Exception:
        return
    with contextlib.suppress(Exception):
        await client.jetstream().delete_stream(settings.nats_stream)
    await client.close()


def new_workspace_id() -> str:
    """Each test works in its own workspace, so tests never depend on each other's rows."""
    from adapters.ids import new_id

    return new_id("ws")
