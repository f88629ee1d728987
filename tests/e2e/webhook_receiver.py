"""A local HTTP server that receives webhook deliveries the way a customer's receiver would.

Each path has a behaviour: `ok` (200), `fail` (500), `hang` (answers 200 after `hang_s`), or a list of statuses
played in order (then 200). Every request is kept with its headers and raw body.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, hang_s: float = 3.0) -> None:
        self.hang_s = hang_s
        self.behaviour: dict[str, str | list[int]] = {}
        self.received: dict[str, list[Received]] = defaultdict(list)
        self.lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                try:
                    status = receiver.status_for(self.path)
                    if status is None:
                        time.sleep(receiver.hang_s)
                        status = 200
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1
                with receiver.lock:
                    receiver.received[self.path].append(Received(self.path, {k.lower(): v for k, v in
                                                                             self.headers.items()}, body))
                    receiver.lock.notify_all()
                answer = b'{"ok": true}' if status < 300 else b"receiver error " + b"x" * 5000
                self.send_response(status)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def verify_request(self, request: object, client_address: object) -> bool:
                with receiver.lock:
                    receiver.connections += 1
                return True

        self.in_flight = 0
        self.most_in_flight = 0
        """Requests being answered at once, and the most there ever were."""
        self.connections = 0
        """TCP connections accepted (TLS or not, whatever follows)."""
        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def status_for(self, path: str) -> int | None:
        with self.lock:
            behaviour = self.behaviour.get(path, "ok")
            if isinstance(behaviour, list):
                return behaviour.pop(0) if behaviour else 200
        return {"ok": 200, "fail": 500, "hang": None}[behaviour]

    def wait_for(self, path: str, count: int = 1, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.received[path]) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{path}: {len(self.received[path])} of {count} deliveries arrived"
                self.lock.wait(left)
            return list(self.received[path])

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
