"""Finding Postgres and NATS: the environment first, else the servers a running `causeloop up` wrote down."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.settings import Settings
from cli.services import (
    AlreadyRunning,
    ServicesNotFound,
    claim_data_folder,
    read_services,
    resolve,
    write_services,
)

SOCKET_URL = "postgresql://postgres:@/causeloop?host=/tmp/a dir/with 'quotes'"


def test_services_written_by_up_read_back_exactly(tmp_path: Path) -> None:
    write_services(tmp_path, Settings(database_url=SOCKET_URL, nats_url="nats://127.0.0.1:4333"))

    assert read_services(tmp_path) == {"DATABASE_URL": SOCKET_URL, "NATS_URL": "nats://127.0.0.1:4333"}


def test_the_environment_wins_over_a_running_up(tmp_path: Path) -> None:
    write_services(tmp_path, Settings(database_url=SOCKET_URL, nats_url="nats://127.0.0.1:4333"))

    resolved = resolve(Settings(data_dir=str(tmp_path), database_url="postgresql://db/x"), nats=True)

    assert (resolved.database_url, resolved.nats_url) == ("postgresql://db/x", "nats://127.0.0.1:4333")


def test_missing_nats_is_reported_only_when_the_command_needs_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), database_url="postgresql://db/x")

    assert resolve(settings).database_url == "postgresql://db/x"
    with pytest.raises(ServicesNotFound, match="NATS_URL not set"):
        resolve(settings, nats=True)


def test_nothing_configured_and_nothing_running_says_to_start_dev_up(tmp_path: Path) -> None:
    with pytest.raises(ServicesNotFound, match=r"start `./dev up` first or set DATABASE_URL and NATS_URL"):
        resolve(Settings(data_dir=str(tmp_path)), nats=True)


def test_a_second_up_on_the_same_data_folder_is_refused(tmp_path: Path) -> None:
    with claim_data_folder(tmp_path), pytest.raises(AlreadyRunning), claim_data_folder(tmp_path):
        pass
