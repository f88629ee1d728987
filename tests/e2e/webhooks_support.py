"""What the outbound webhook tests share: a clock the tests move, the delivery worker on a thread, API helpers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from adapters.webhook_targets import Resolver, system_resolver
from domain.identity.roles import Role
from tests.e2e.conftest import Tenant
from tests.worker_thread import WorkerThread
from workers.webhook_delivery import run_webhooks

Client = AsyncTestClient  # type: ignore[type-arg]
ADMIN = Role.TENANT_ADMIN
T = TypeVar("T")


class Clock:
    """Real time plus an offset the tests move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class DeliveryWorker(WorkerThread):
    def __init__(self, settings: Settings, clock: Clock, resolver: Resolver = system_resolver) -> None:
        super().__init__("webhooks", lambda stopping: run_webhooks(settings, stopping, clock=clock.now,
                                                                   resolver=resolver))


async def create_webhook(api: Client, tenant: Tenant, url: str, event_types: list[str] | None = None,
                         **fields: Any) -> dict[str, Any]:
    response = await api.post("/v1/webhooks", json={"url": url, "event_types": event_types or ["issue.created"],
                                                    **fields}, headers=tenant.headers(ADMIN))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def open_issue(api: Client, tenant: Tenant, title: str = "Checkout fails") -> str:
    response = await api.post("/v1/issues", json={"title": title}, headers=tenant.headers(ADMIN))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def deliveries(api: Client, tenant: Tenant, webhook_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=tenant.headers(ADMIN))
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 15.0) -> T:
    """The worker is asynchronous: poll its outcome (recorded by the worker, not a read model) until it is there."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found is not None:
            return found
        assert time.monotonic() < deadline, "the worker never got there"
        await asyncio.sleep(0.02)


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (docs/webhook-signatures.md): any of the comma-separated signatures matches."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in header.split(","))


def until_status(api: Client, tenant: Tenant, webhook_id: str, status: str, attempts: int = 1
                 ) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    async def probe() -> dict[str, Any] | None:
        found = await deliveries(api, tenant, webhook_id)
        return next((d for d in found if d["status"] == status and len(d["attempts"]) >= attempts), None)
    return probe
