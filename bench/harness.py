"""The bench's own deployment: a fresh schema, stream and subject prefix, and the processes it measures.

Everything binds or connects to loopback only. Every process the bench starts is tracked by pid and
stopped by pid (its own process group, which the bench created) when the bench ends, however it ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import psycopg

from adapters.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RUN_DIR_ROOT = Path("/tmp")

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    """A child process in its own process group, with its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """User+system CPU of this process and its live children (uvicorn workers), from /proc."""
        return sum(_proc_cpu(pid) for pid in [self.pid, *_children(self.pid)])


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(p) for p in text.split()]
    return kids + [g for k in kids for g in _children(k)]


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass
class BenchEnv:
    """One benchmark run's deployment and the processes started in it."""

    settings: Settings
    run_dir: Path
    procs: list[Proc] = field(default_factory=list)

    @classmethod
    def create(cls, database_url: str, nats_url: str) -> BenchEnv:
        run_id = secrets.token_hex(4)
        run_dir = RUN_DIR_ROOT / f"causeloop-bench-{run_id}"
        run_dir.mkdir(parents=True)
        tuned = {name: value for name, value in os.environ.items()  # e.g. SEARCH_RANK_WINDOW=250 for one run
                 if name.lower() in Settings.__struct_fields__ and not name.startswith(("DATABASE_", "NATS_"))}
        settings = msgspec.structs.replace(
            load_settings(tuned),
            environment="bench",
            database_url=database_url,
            database_schema=f"bench_{run_id}",
            nats_url=nats_url,
            nats_stream=f"BENCH_{run_id.upper()}",
            subject_prefix=f"bench_{run_id}",
            rate_limit_per_minute=1_000_000_000,
            data_dir=str(run_dir / "data"),
            log_level="WARNING",
        )
        return cls(settings=settings, run_dir=run_dir)

    # -- environment for child processes ------------------------------------------------------------------------

    def child_env(self, settings: Settings | None = None) -> dict[str, str]:
        settings = settings or self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "NATS_", "SUBJECT_"))}
        for name, value in msgspec.structs.asdict(settings).items():
            env[name.upper()] = str(value)
        env["PYTHONPATH"] = str(REPO)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Proc:
        log_path = self.run_dir / f"{name}.log"
        log = log_path.open("ab")
        popen = subprocess.Popen(list(argv), cwd=REPO, env=env or self.child_env(), stdout=log,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        proc = Proc(name=name, popen=popen, log_path=log_path)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)

    # -- the processes ------------------------------------------------------------------------------------------

    def start_relay(self) -> Proc:
        return self.start("relay", [str(VENV_BIN / "causeloop"), "relay"])

    def start_projector(self) -> Proc:
        """One process hosting every read model, as deployed."""
        return self.start("projector", [str(VENV_BIN / "causeloop"), "projector"])

    def start_uvicorn(self, name: str, factory: str, workers: int, extra_env: dict[str, str] | None = None
                      ) -> tuple[Proc, int]:
        """uvicorn as deployed (cli/run.py): uvloop, httptools bounded by the input policy's head limit, no proxy
        headers, no access log; `factory` is `module:callable`."""
        port = free_port()
        env = {**self.child_env(), **(extra_env or {})}
        argv = [str(VENV_BIN / "uvicorn"), factory, "--factory", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--loop", "uvloop", "--http", "cli.http_protocol:BoundedHttpToolsProtocol",
                "--no-proxy-headers", "--no-access-log",
                "--log-level", "warning"]
        proc = self.start(name, argv, env)
        wait_http(proc, f"http://127.0.0.1:{port}/health", timeout=60)
        return proc, port

    def own_pids(self) -> set[int]:
        """Every live process the bench started, with their children (uvicorn workers), and wrk/pyload children."""
        pids = {pid for proc in self.procs if proc.alive() for pid in [proc.pid, *_children(proc.pid)]}
        return pids | set(_children(os.getpid()))

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)

    # -- teardown ----------------------------------------------------------------------------------------------

    def drop(self) -> None:
        """Drop the bench schema (and a rebuild's shadow schema) and the JetStream stream."""
        schema = self.settings.database_schema
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}__rb_issues" CASCADE')
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        import asyncio

        import nats
        from nats.js.errors import NotFoundError

        async def delete_stream() -> None:
            nc = await nats.connect(self.settings.nats_url, connect_timeout=5, max_reconnect_attempts=1)
            try:
                with contextlib.suppress(NotFoundError):
                    await nc.jetstream().delete_stream(self.settings.nats_stream)
            finally:
                await nc.close()

        asyncio.run(delete_stream())


def wait_http(proc: Proc, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:.0f}s:\n{proc.tail()}")


@contextlib.contextmanager
def bench_env(database_url: str, nats_url: str, keep: bool = False) -> Iterator[BenchEnv]:
    env = BenchEnv.create(database_url, nats_url)
    try:
        yield env
    finally:
        env.stop_all()
        if not keep:
            env.drop()
