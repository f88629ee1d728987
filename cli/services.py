"""Where Postgres and NATS are: the environment, else the embedded servers that `causeloop up` started.

`up` writes the embedded servers' URLs to `<data_dir>/services.env` while it runs, so commands run
from another shell (`causeloop token`, `causeloop migrate`, ...) find the same servers.
"""

from __future__ import annotations

import fcntl
import os
import shlex
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import msgspec

from adapters.settings import Settings
from cli import embedded

SERVICES_FILE = "services.env"
LOCAL_DATABASE = "causeloop"
TEST_DATABASE = "test"
TEST_SERVICES_DIR = "test-services"
DEFAULT_TEST_POSTGRES = ("127.0.0.1", 5432)
DEFAULT_TEST_NATS = ("127.0.0.1", 4222)


class ServicesNotFound(RuntimeError):
    """A command needs Postgres or NATS, and neither the environment nor a running `up` says where it is."""


class AlreadyRunning(RuntimeError):
    """One `up` per data folder: a second one would share, then stop, the first one's servers."""


def data_dir(settings: Settings) -> Path:
    return Path(settings.data_dir).expanduser().resolve()


def write_services(folder: Path, settings: Settings) -> None:
    (folder / SERVICES_FILE).write_text(
        "# Written by `causeloop up` while it runs; `source` it to reach the same servers.\n"
        f"DATABASE_URL={shlex.quote(settings.database_url)}\n"
        f"NATS_URL={shlex.quote(settings.nats_url)}\n"
    )


def read_services(folder: Path) -> dict[str, str]:
    try:
        text = (folder / SERVICES_FILE).read_text()
    except FileNotFoundError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            found[key.strip()] = "".join(shlex.split(value))
    return found


def resolve(settings: Settings, *, nats: bool = False) -> Settings:
    """`settings` with DATABASE_URL (and NATS_URL if `nats`) from the environment, else from `up`."""
    folder = data_dir(settings)
    running = read_services(folder)
    database_url = settings.database_url or running.get("DATABASE_URL", "")
    nats_url = settings.nats_url or running.get("NATS_URL", "")
    missing = [] if database_url else ["DATABASE_URL"]
    if nats and not nats_url:
        missing.append("NATS_URL")
    if missing:
        names = " and ".join(missing)
        raise ServicesNotFound(f"{names} not set, and no `causeloop up` runs with data folder {folder}: "
                               f"start `./dev up` first or set {names}")
    return msgspec.structs.replace(settings, database_url=database_url, nats_url=nats_url)


@contextmanager
def local_services(settings: Settings) -> Iterator[Settings]:
    """Embedded Postgres and NATS for whatever the environment leaves unset; stopped again on exit."""
    folder = data_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        stack.enter_context(claim_data_folder(folder))
        if not settings.database_url:
            stack.callback(embedded.stop_postgres, folder / "postgres")
            url = embedded.start_postgres(folder / "postgres", LOCAL_DATABASE)
            settings = msgspec.structs.replace(settings, database_url=url)
        if not settings.nats_url:
            stack.callback(embedded.stop_nats, folder / "nats")
            settings = msgspec.structs.replace(settings, nats_url=embedded.start_nats(folder / "nats"))
        write_services(folder, settings)
        stack.callback((folder / SERVICES_FILE).unlink, missing_ok=True)
        yield settings


@contextmanager
def claim_data_folder(folder: Path) -> Iterator[None]:
    """Held while `up` runs; the lock goes with the process, however it ends."""
    fd = os.open(folder / "up.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(f"another `causeloop up` uses data folder {folder}") from None
        yield
    finally:
        os.close(fd)


def start_test_services(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Shell `export` lines for the test servers that the environment names none of and that do not answer."""
    folder = data_dir(settings) / TEST_SERVICES_DIR
    exports: list[str] = []
    if not environ.get("TEST_DATABASE_URL") and not embedded.port_open(*DEFAULT_TEST_POSTGRES):
        url = embedded.start_postgres(folder / "postgres", TEST_DATABASE)
        exports.append(f"export TEST_DATABASE_URL={shlex.quote(url)}")
    if not environ.get("TEST_NATS_URL") and not embedded.port_open(*DEFAULT_TEST_NATS):
        url = embedded.start_nats(folder / "nats")
        exports.append(f"export TEST_NATS_URL={shlex.quote(url)}")
    return exports


def stop_test_services(settings: Settings) -> None:
    folder = data_dir(settings) / TEST_SERVICES_DIR
    embedded.stop_nats(folder / "nats")
    embedded.stop_postgres(folder / "postgres")
