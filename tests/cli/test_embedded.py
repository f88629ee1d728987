"""The embedded servers behind `causeloop up`: they start, keep their data across restarts, survive stale pid files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import nats
import psycopg
import pytest

from cli.embedded import start_nats, start_postgres, stop_nats, stop_postgres


@pytest.fixture
def nats_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "nats"
    yield folder
    stop_nats(folder)


@pytest.fixture
def pgdata(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "pg"
    yield folder
    stop_postgres(folder)


async def test_embedded_nats_keeps_jetstream_data_across_a_restart(nats_dir: Path) -> None:
    nc = await nats.connect(start_nats(nats_dir))
    await nc.jetstream().add_stream(name="KEEP", subjects=["keep.>"])
    await nc.jetstream().publish("keep.one", b"1")
    await nc.close()
    stop_nats(nats_dir)

    nc = await nats.connect(start_nats(nats_dir))
    info = await nc.jetstream().stream_info("KEEP")
    await nc.close()

    assert info.state.messages == 1


def test_a_stale_nats_pid_file_naming_another_process_is_ignored(nats_dir: Path) -> None:
    nats_dir.mkdir(parents=True)
    (nats_dir / "nats-server.pid").write_text(f"{os.getpid()}\n")

    url = start_nats(nats_dir)

    assert url.startswith("nats://127.0.0.1:")
    assert int((nats_dir / "nats-server.pid").read_text()) != os.getpid()


def test_embedded_postgres_keeps_its_data_and_survives_a_stale_postmaster_pid(pgdata: Path) -> None:
    with psycopg.connect(start_postgres(pgdata, "causeloop"), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    stop_postgres(pgdata)
    # As after a crash whose pid was recycled: postmaster.pid names a live process that is not Postgres.
    (pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdata}\n0\n5432\n{pgdata}\n\n  0 0\nready\n")

    with psycopg.connect(start_postgres(pgdata, "causeloop")) as conn:
        row = conn.execute("SELECT n FROM kept").fetchone()

    assert row == (42,)
