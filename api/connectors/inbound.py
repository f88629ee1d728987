"""Inbound webhooks (`POST /v1/webhooks/inbound/{connector_id}`): a tool pushes its events to one connector.

Public (no bearer): the connector's signing secret authenticates. The raw bytes are verified before any parsing,
with HMAC-SHA256 compared in constant time; a missing or wrong signature, or a connector without a secret, is 401
(fail closed). A delivery is an ingestion job (commands/ingestion.py, the one way issues are ingested) whose stream
is keyed by connector + delivery id: the job and its issues are appended in one transaction, and a replay finds the
job and is acknowledged without ingesting again. Its `job_id` reads at `GET /v1/ingest/status/{job_id}`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.params import FromPath

from adapters.secret_box import MasterKeyMissing, UndecryptableSecret
from api.core.auth import PUBLIC
from api.core.consistency import settle
from api.core.errors import ApiError, error_responses, not_found, validation_error
from commands.caller import Caller
from commands.connectors import ConnectorCommands
from commands.ingestion import IngestionCommands, job_of, replayed
from domain.connectors.payloads import delivered_record, delivery_items
from domain.events import Actor, ActorKind
from domain.ids import WorkspaceId, canonical, render
from domain.ingestion.events import JobKind, RejectedRecord
from domain.ingestion.normalize import CanonicalRecord, Rejected
from projections.issues.projector import NAME as ISSUES_PROJECTION

REPLAY_WINDOW_S = 300
MAX_RECORDS = 500
SIGNATURE = "x-causeloop-signature"
GITHUB_SIGNATURE = "x-hub-signature-256"
TIMESTAMP = "x-causeloop-timestamp"
DELIVERY_HEADERS = ("x-causeloop-delivery", "x-causeloop-event-id", "x-github-delivery")
INBOUND_ERRORS = error_responses(
    e400="validation_error: the body is not JSON, or carries more than 500 records",
    e401="unauthorized: missing or wrong signature, or the connector has no signing secret (fails closed)",
    e503="service_unavailable: CAUSELOOP_MASTER_KEY is not configured (production)")


class InboundAccepted(msgspec.Struct, kw_only=True):
    accepted: int
    """Records stored as issues (created, updated, or unchanged); 0 for a replay."""
    rejected: list[RejectedRecord]
    job_id: str
    """The delivery's ingestion job (`ing_job_…`, readable at `GET /v1/ingest/status/{job_id}`): the same for every
    replay of one delivery."""
    replayed: bool = False


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


def verify(raw: bytes, headers: Any, secret: str | None) -> None:
    """HMAC-SHA256(secret, raw body): `x-causeloop-signature: <hex>` or `x-hub-signature-256: sha256=<hex>`."""
    if not secret:
        raise _unauthorized("This connector has no signing secret: inbound webhooks are refused")
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    given = headers.get(SIGNATURE)
    if given is None:
        github = headers.get(GITHUB_SIGNATURE) or ""
        given = github.removeprefix("sha256=") if github.startswith("sha256=") else None
    if given is None:
        raise _unauthorized(f"Missing signature: send {SIGNATURE} or {GITHUB_SIGNATURE}")
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("ascii", "replace")):
        raise _unauthorized("The signature does not match the body")


def _stale(headers: Any) -> bool:
    """A delivery stamped more than 5 minutes away from now (`x-causeloop-timestamp`, Unix seconds)."""
    stamp = headers.get(TIMESTAMP)
    if stamp is None:
        return False
    try:
        return abs(time.time() - float(stamp)) > REPLAY_WINDOW_S
    except ValueError:
        return True


@post("/v1/webhooks/inbound/{connector_id:str}", opt=PUBLIC, security=[], status_code=202, tags=["Webhooks"],
      responses=INBOUND_ERRORS)
async def receive_inbound_webhook(request: Request[Any, Any, Any], state: State, connector_id: FromPath[str]
                                  ) -> Response[InboundAccepted]:
    """Receive a tool's event for a connector, signed with the connector's `signing_secret` over the exact raw
    bytes (`x-causeloop-signature: <hex>` or GitHub's `x-hub-signature-256: sha256=<hex>`). The payload is the
    tool's own (GitHub `issues` events, Jira issue events, PagerDuty incident events, Sentry issue alerts) or,
    for other types, one canonical record or `{"records": [...]}`. A replay (same `x-causeloop-delivery` /
    `x-github-delivery` / `x-causeloop-event-id`, else the same body) or a delivery whose `x-causeloop-timestamp`
    is more than 5 minutes away is acknowledged (202) and not ingested again. A delivery is an ingestion job: its
    `job_id` reads at `GET /v1/ingest/status/{job_id}` (with the connector's id)."""
    public_id = canonical("con", connector_id)
    commands: ConnectorCommands = state.connector_commands
    connector = None if public_id is None else await commands.connector_anywhere(public_id)
    if connector is None or public_id is None:
        raise not_found("connector", connector_id)
    raw = await request.body()
    try:
        secret = commands.signing_secret_of(connector)
    except MasterKeyMissing:
        raise ApiError(503, "service_unavailable", "Inbound webhooks need CAUSELOOP_MASTER_KEY") from None
    except UndecryptableSecret:
        secret = None
    verify(raw, request.headers, secret)
    delivery_id = next((request.headers[h] for h in DELIVERY_HEADERS if request.headers.get(h)), None) \
        or "sha256:" + hashlib.sha256(raw).hexdigest()
    job_stream = ConnectorCommands.delivery_stream(public_id, delivery_id)
    job_id = render("ing_job", job_stream)
    ingestion: IngestionCommands = state.ingestion_commands
    if _stale(request.headers) or await ingestion.exists(job_stream):
        return _replay(job_id)
    try:
        payload = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise validation_error("body", "must be JSON") from None
    items = delivery_items(connector.type, payload)
    if len(items) > MAX_RECORDS:
        raise validation_error("records", f"at most {MAX_RECORDS} per delivery")
    caller = Caller(workspace_id=WorkspaceId(connector.workspace_id),
                    actor=Actor(kind=ActorKind.SYSTEM, id="inbound-webhook"), correlation_id=job_id)
    records: list[tuple[int, CanonicalRecord]] = []
    rejected: list[RejectedRecord] = []
    for index, item in enumerate(items):
        try:
            records.append((index, delivered_record(connector.type, item, connector.config)))
        except Rejected as exc:
            rejected.append(RejectedRecord(index=index, reason=exc.message))
    result = await ingestion.ingest(caller, kind=JobKind.SOURCE, received=len(items), records=records,
                                    rejected=rejected, source=connector.type, connector_id=public_id,
                                    job_stream=job_stream)
    if replayed(result):  # the same delivery, twice at once: the other one ingested it
        return _replay(job_id)
    job = job_of(result)
    headers = await settle(state, (ISSUES_PROJECTION, result.position))  # read-your-writes, as for POST /v1/issues
    return Response(InboundAccepted(accepted=len(job.issues), rejected=job.rejected, job_id=job_id),
                    status_code=202, headers={**headers, "Location": f"/v1/ingest/status/{job_id}"})


def _replay(job_id: str) -> Response[InboundAccepted]:
    return Response(InboundAccepted(accepted=0, rejected=[], job_id=job_id, replayed=True), status_code=202)
