"""What the notification-channel tests share: the channel-delivery worker on a thread, a tiny SMTP server, and
reading the worker's outcome rows."""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from tests.e2e.webhooks_support import Clock
from tests.worker_thread import WorkerThread
from workers.channel_delivery import run_channel_delivery

Client = AsyncTestClient  # type: ignore[type-arg]


class ChannelWorker(WorkerThread):
    def __init__(self, settings: Settings, clock: Clock) -> None:
        super().__init__("channels", lambda stopping: run_channel_delivery(settings, stopping, clock=clock.now))


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: str


@dataclass
class SmtpServer:
    """Speaks just enough SMTP for smtplib: EHLO, MAIL, RCPT, DATA, QUIT; keeps every message."""

    received: list[Mail] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        smtp = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 test ESMTP\r\n")
                sender, recipients = "", []
                while line := self.rfile.readline().decode():
                    verb = line[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        self.wfile.write(b"250 test\r\n")
                    elif verb == "MAIL":
                        sender = line.split(":", 1)[1].strip()
                        self.wfile.write(b"250 ok\r\n")
                    elif verb == "RCPT":
                        recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                        self.wfile.write(b"250 ok\r\n")
                    elif verb == "DATA":
                        self.wfile.write(b"354 go\r\n")
                        body = []
                        while (part := self.rfile.readline().decode()) not in (".\r\n", ""):
                            body.append(part)
                        with smtp.arrived:
                            smtp.received.append(Mail(sender, recipients, "".join(body)))
                            smtp.arrived.notify_all()
                        self.wfile.write(b"250 queued\r\n")
                    elif verb == "QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, to: str, timeout: float = 15.0) -> Mail:
        with self.arrived:
            assert self.arrived.wait_for(lambda: any(to in m.recipients for m in self.received), timeout)
            return next(m for m in self.received if to in m.recipients)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def deliveries(settings: Settings, workspace_id: str) -> list[dict[str, Any]]:
    """The worker's rows for one workspace (operational state: no API lists them)."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        cur = conn.execute("SELECT d.*, (SELECT array_agg(a.status_code ORDER BY a.attempt)"
                           " FROM notification_delivery_attempts a WHERE (a.workspace_id, a.user_id,"
                           " a.notification_id, a.channel) = (d.workspace_id, d.user_id, d.notification_id,"
                           " d.channel)) AS codes FROM notification_deliveries d WHERE d.workspace_id = %s"
                           " ORDER BY d.position, d.channel", (workspace_id,))
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


async def set_preferences(api: Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await api.put("/v1/me/notification-preferences", json=body, headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def open_issue(api: Client, headers: dict[str, str], title: str, severity: str = "critical") -> str:
    response = await api.post("/v1/issues", json={"title": title, "severity": severity}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
