"""Runs one HTTP load: `wrk` with bench/load.lua when installed, else the asyncio client in bench/pyload.py.

Both are closed-loop (each connection sends its next request when the previous answer is in), bounded
by time (duration) and count (max responses). The client's own CPU time is measured (rusage of the
waited child) so the report can say how much of the 2 shared cores the load generator took.
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LUA = Path(__file__).with_name("load.lua")


@dataclass(frozen=True)
class LoadResult:
    client: str
    requests: int
    seconds: float
    ok: int
    non_2xx: int
    socket_errors: int
    pending: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    client_cpu_s: float
    raw: dict[str, Any]

    @property
    def rate(self) -> float:
        """Successful (2xx) responses per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def client_cpu_share(self) -> float:
        """Cores the load generator used on average."""
        return self.client_cpu_s / self.seconds if self.seconds else 0.0


def which_client(preferred: str) -> str:
    if preferred == "wrk" and shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk); using the Python client", file=sys.stderr)
        return "python"
    return preferred


def run_load(*, client: str, port: int, mode: str, path: str, token: str | None, connections: int,
             duration: float, max_requests: int, words_file: Path | None, threads: int = 2,
             timeout_s: float = 10.0) -> LoadResult:
    words = str(words_file) if words_file else "-"
    if client == "wrk":
        threads = max(1, min(threads, connections))
        per_thread = max(1, math.ceil(max_requests / threads))
        argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
                "--timeout", f"{timeout_s:.0f}s", "-s", str(LUA), f"http://127.0.0.1:{port}{path.split('?')[0]}",
                "--", mode, token or "-", str(per_thread), path, words]
    else:
        spec = {"mode": mode, "port": port, "path": path, "token": token or "-", "connections": connections,
                "duration": duration, "max": max_requests, "words": words, "timeout": timeout_s}
        argv = [sys.executable, "-m", "bench.pyload", json.dumps(spec)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + timeout_s + 60,
                          cwd=Path(__file__).resolve().parent.parent)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"{client} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("BENCHJSON "))
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    lat = raw["latency_us"]
    return LoadResult(
        client=client, requests=raw["requests"], seconds=seconds, ok=raw["s2xx"],
        non_2xx=raw["s3xx"] + raw["s4xx"] + raw["s5xx"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        pending=raw["pending"], p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000, p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000, client_cpu_s=cpu, raw=raw,
    )
