"""The hostile client: schemathesis generates requests, valid and invalid, for every operation of `/openapi.json`
and sends them to the real API (uvicorn, relay, projectors, Postgres, NATS). Any 5xx fails, and so does any answer
that breaks what the document promises for its status: an undocumented status, another content type, a body off
its schema, an error that is not the envelope.

Each operation works in a workspace of its own whose owner is the caller (a SCIM token for /scim/v2, nothing for
public routes), so what one operation does (turning on `mfa_required`, deleting an account) never changes what
another sees, whatever their order. A valid case whose path names resources is sent twice: as generated, and on
resources seeded in that workspace through the API, so the routes are exercised past their 404s.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import requests
import schemathesis
from schemathesis import Case, CheckContext
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from adapters.event_store import EventStore
from adapters.settings import Settings
from api.app import create_app
from api.core.auth import BEARER_SCHEME_NAME
from api.scim.auth import SCIM_SCHEME_NAME
from domain.identity.roles import Role
from tests.e2e.conftest import Tenant, Workers
from tests.e2e.live_api import LiveApi, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.nats]

MAX_EXAMPLES = 20
SEED = 10
"""Fixed, with derandomized generation: every run sends the same requests, so a CI failure reproduces locally."""
ERROR_ENVELOPE_KEYS = {"code", "message", "trace_id", "details"}


@pytest.fixture(scope="module")
def live_api(settings: Settings, workers: Workers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    served = msgspec.structs.replace(settings, port=free_port(), rate_limit_per_minute=1_000_000,
                                     data_dir=str(tmp_path_factory.mktemp("hostile-data")),
                                     webhooks_allow_private_targets=True)  # seeded webhooks target 127.0.0.1
    with LiveApi(served) as api:
        assert requests.get(f"{api.url}/openapi.json", timeout=30).json() == DOCUMENT
        yield api


class Workspace:
    """A tenant of one operation: its owner's token, a SCIM token when needed, and seeded ids by path parameter."""

    def __init__(self, api: LiveApi, tenant: Tenant) -> None:
        self.api = api
        self.tenant = tenant
        self.owner = tenant.headers(Role.OWNER)["Authorization"].removeprefix("Bearer ")
        self._scim: str | None = None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(method, self.api.url + path, json=body, timeout=30,
                                    headers={"Authorization": f"Bearer {self.owner}"})
        assert response.status_code < 300, f"seeding {method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    @property
    def scim(self) -> str:
        if self._scim is None:
            self._scim = str(self.call("POST", "/v1/settings/scim-tokens", {"name": "idp"})["secret"])
        return self._scim

    def auth(self, case: Case) -> dict[str, str]:
        """The owner's token, the SCIM token or nothing, as the operation's security scheme asks."""
        schemes = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
        secret = self.scim if SCIM_SCHEME_NAME in schemes else self.owner if BEARER_SCHEME_NAME in schemes else None
        return {"Authorization": f"Bearer {secret}"} if secret else {}

    def member(self) -> dict[str, Any]:
        self.tenant.member_headers(Role.VIEWER)
        members = self.call("GET", "/v1/members?limit=100")["data"]
        return next(m for m in members if m["user_id"] != self.tenant.user_id)

    def seed(self, path: str) -> dict[str, str]:
        """Real values for the path parameters of `path`, created through the API."""
        if path.startswith("/v1/issues/{issue_id}"):
            return {"issue_id": self.call("POST", "/v1/issues", {"title": "seeded"})["id"]}
        if path.startswith("/v1/onboarding/steps/"):
            return {"step": "invite_team"}
        if path.startswith("/v1/members/"):
            return {"member_id": self.member()["id"]}
        if path.startswith("/v1/invitations/{invitation_id}"):
            invited = self.call("POST", "/v1/invitations", {"email": f"{uuid.uuid4().hex[:8]}@example.test",
                                                            "role": "viewer"})
            return {"invitation_id": invited["id"]}
        if path.startswith("/v1/api-tokens/{token_id}"):
            created = self.call("POST", "/v1/api-tokens", {"name": "seeded", "scopes": ["issues:read"]})
            return {"token_id": created["id"]}
        if path.startswith("/v1/settings/scim-tokens/"):
            return {"token_id": self.call("POST", "/v1/settings/scim-tokens", {"name": "seeded"})["id"]}
        if path.startswith("/v1/service-accounts/{account_id}"):
            account = self.call("POST", "/v1/service-accounts", {"name": "seeded", "role": "viewer"})["id"]
            token = self.call("POST", f"/v1/service-accounts/{account}/tokens", {"name": "seeded"})["id"]
            return {"account_id": account, "token_id": token}
        if path.startswith("/v1/webhooks/{webhook_id}"):
            webhook = self.call("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/hook",
                                                         "event_types": ["issue.created"]})["id"]
            ping = self.call("POST", f"/v1/webhooks/{webhook}/test")["delivery_id"]
            return {"webhook_id": webhook, "delivery_id": ping}
        if path.startswith("/scim/v2/Users/"):
            return {"user_id": self.member()["user_id"]}
        if path.startswith("/scim/v2/Groups/"):
            return {"group_id": "viewer"}
        if path.startswith(("/v1/connectors/{connector_id}", "/v1/sync-runs/", "/v1/webhooks/inbound/")):
            connector = self.call("POST", "/v1/connectors", {  # a provider that never answers: a closed port
                "type": "github", "config": {"owner": "acme", "repo": "web", "base_url": "http://127.0.0.1:9"},
                "credentials": {"token": "t"}})["id"]
            return {"connector_id": connector, "run_id": self.call("POST", f"/v1/connectors/{connector}/sync")["id"]}
        if path.startswith("/v1/ingest/status/"):
            return {"job_id": self.call("POST", "/v1/ingest/events", {"title": "seeded"})["job_id"]}
        if path.startswith("/v1/ingest/{source}/"):
            return {"source": "custom_api"}
        return {}


class Workspaces:
    """One Workspace per operation, with its seeded path parameters, made on the operation's first case."""

    def __init__(self, api: LiveApi, settings: Settings, store: EventStore) -> None:
        self.api = api
        self._settings = settings
        self._store = store
        self._by_operation: dict[str, tuple[Workspace, dict[str, str]]] = {}

    def of(self, case: Case) -> tuple[Workspace, dict[str, str]]:
        label = case.operation.label
        if label not in self._by_operation:
            workspace = Workspace(self.api, Tenant(self._settings, self._store))
            self._by_operation[label] = (workspace, workspace.seed(case.operation.path))
        return self._by_operation[label]


@pytest.fixture(scope="module")
def workspaces(live_api: LiveApi, settings: Settings, identity_store: EventStore) -> Workspaces:
    return Workspaces(live_api, settings, identity_store)


def error_envelope(ctx: CheckContext, response: schemathesis.Response, case: Case) -> bool | None:
    """Every 4xx of /v1 and the root routes is the error envelope, whose trace_id is the X-Request-Id."""
    if response.status_code < 400 or response.status_code >= 500 or case.operation.path.startswith("/scim/"):
        return None
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(error) != ERROR_ENVELOPE_KEYS or \
            error["trace_id"] != response.headers.get("x-request-id", [None])[0]:
        raise Failure(operation=case.operation.label, title="Not the error envelope",
                      message=f"{response.status_code} answered {body!r}")
    return True


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, error_envelope, ignored_auth, negative_data_rejection, unsupported_method,
          missing_required_header]

DOCUMENT = create_app(Settings(), configure_logging=False).openapi_schema.to_schema()
"""What `/openapi.json` serves (the `live_api` fixture checks); read at import, so each operation is a test."""
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
}))


@schema.parametrize()
def test_no_operation_answers_5xx_or_off_its_documented_schema(case: Case, workspaces: Workspaces) -> None:
    """Each case is sent as generated; a valid one whose path names resources is sent again on resources that
    exist. A case whose credentials are the invalid part goes without ours."""
    workspace, seeded = workspaces.of(case)
    headers = {} if case.operation.schema.is_security_param_negated(case) else workspace.auth(case)
    send_and_check(case, workspaces.api.url, headers)
    if seeded and (case.meta is None or case.meta.generation.mode.is_positive):
        on_seeded = case.operation.Case(
            method=case.method, path_parameters={**case.path_parameters, **seeded}, headers=case.headers,
            cookies=case.cookies, query=case.query, body=case.body, media_type=case.media_type)
        send_and_check(on_seeded, workspaces.api.url, headers)


NOT_HTTP = "Invalid HTTP request received."
"""uvicorn's own answer (400, plain text) to bytes its parser refuses: such a request never reaches the app."""
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
"""What an HTTP field value may hold (RFC 9110 §5.5): visible characters, obs-text, spaces and tabs."""


def well_formed(headers: dict[str, Any]) -> bool:
    """Every field value is one HTTP allows, and the framing fields frame: `Transfer-Encoding` names `chunked`
    (RFC 9112 §6.1; an empty one, which schemathesis may generate, frames nothing) and `Content-Length` is a
    number."""
    for name, value in headers.items():
        text = str(value)
        if not _FIELD_VALUE.fullmatch(text):
            return False
        if name.lower() == "transfer-encoding" and text.strip().lower() != "chunked":
            return False
        if name.lower() == "content-length" and not text.strip().isdigit():
            return False
    return True


def send_and_check(case: Case, base_url: str, headers: dict[str, str]) -> None:
    """Send the case and run every check on the answer, except when the server refused the request as not HTTP
    (a generated header with a control character, or an empty `Transfer-Encoding`): then no app code ran, there
    is no envelope to check, and the case must indeed have been malformed; a well-formed request refused so
    fails here."""
    response = case.call(base_url=base_url, headers=headers)
    if response.status_code == 400 and "x-request-id" not in response.headers and response.text == NOT_HTTP:
        sent = {**(case.headers or {}), **headers}
        assert not well_formed(sent), f"the server refused a well-formed request as not HTTP: {sent!r}"
        return
    case.validate_response(response, checks=CHECKS, headers=headers,
                           transport_kwargs={"base_url": base_url, "headers": dict(headers)})
