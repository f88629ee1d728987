"""Fallback load generator when `wrk` is missing: raw HTTP/1.1 keep-alive over asyncio streams, in its own process.

`python -m bench.pyload '<json spec>'` prints one line `BENCHJSON {...}` in the same shape as bench/load.lua.
Bounded by count (`max` responses in all) and time (`duration` seconds). Latency is measured per request
from write to the end of the response body (closed loop, like wrk).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

SEVERITIES = ["critical", "high", "high", "medium", "medium", "medium", "low", "low"]


def _request(spec: dict[str, Any], words: list[str], rng: random.Random, counter: int) -> bytes:
    auth = f"Authorization: Bearer {spec['token']}\r\n" if spec.get("token") not in (None, "-") else ""
    if spec["mode"] == "post":
        title = " ".join(rng.choice(words) for _ in range(5))
        body = json.dumps({"title": f"{title} #{counter}", "severity": rng.choice(SEVERITIES),
                           "body": " ".join(rng.choice(words) for _ in range(6))}).encode()
        return (f"POST {spec['path']} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    path = spec["path"].replace("%s", rng.choice(words)) if words else spec["path"]
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()


async def _connection(spec: dict[str, Any], words: list[str], state: dict[str, Any], seed: int) -> None:
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", spec["port"])
    latencies: list[float] = state["latencies"]
    try:
        while time.monotonic() < state["deadline"] and state["responses"] < spec["max"]:
            state["counter"] += 1
            started = time.perf_counter()
            writer.write(_request(spec, words, rng, state["counter"]))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), spec["timeout"])
            status = int(head[9:12])
            length = 0
            chunked = False
            pending = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                lname = name.strip().lower()
                if lname == b"content-length":
                    length = int(value)
                elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
                elif lname == b"x-causeloop-consistency":
                    pending = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            state["responses"] += 1
            state["bytes"] += len(head) + length
            state[f"s{status // 100}xx"] += 1
            state["pending"] += pending
    except TimeoutError:
        state["timeouts"] += 1
    except (ConnectionError, asyncio.IncompleteReadError):
        state["read_errors"] += 1
    finally:
        writer.close()


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    words = Path(spec["words"]).read_text().split() if spec.get("words") not in (None, "-") else []
    state: dict[str, Any] = {"latencies": [], "responses": 0, "bytes": 0, "counter": 0, "pending": 0,
                             "s2xx": 0, "s3xx": 0, "s4xx": 0, "s5xx": 0, "timeouts": 0, "read_errors": 0}
    started = time.monotonic()
    state["deadline"] = started + spec["duration"]
    await asyncio.gather(*(_connection(spec, words, state, i) for i in range(spec["connections"])),
                         return_exceptions=True)
    elapsed = time.monotonic() - started
    lat = sorted(state["latencies"])

    def pct(p: float) -> int:
        return int(lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1e6) if lat else 0

    return {
        "requests": state["responses"], "duration_us": int(elapsed * 1e6), "bytes": state["bytes"],
        "errors": {"connect": 0, "read": state["read_errors"], "write": 0,
                   "status": state["s4xx"] + state["s5xx"], "timeout": state["timeouts"]},
        "latency_us": {"min": pct(0), "mean": (sum(lat) / len(lat) * 1e6) if lat else 0, "max": pct(100),
                       "stdev": 0.0, "p50": pct(50), "p90": pct(90), "p99": pct(99), "p999": pct(99.9)},
        "responses": state["responses"], "s2xx": state["s2xx"], "s3xx": state["s3xx"], "s4xx": state["s4xx"],
        "s5xx": state["s5xx"], "pending": state["pending"], "count_bounded": int(state["responses"] >= spec["max"]),
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = uvloop.run(run(spec))
    print("BENCHJSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
