"""The OpenAPI document, the route table's declared scopes, and the operational endpoints."""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from api.app import create_app
from api.core.auth import http_handlers, is_preflight, route_scope, undeclared_routes
from domain.identity.roles import ALL_SCOPES

pytestmark = [pytest.mark.postgres, pytest.mark.nats]

ISSUE_ROUTES = {
    ("/v1/issues", "post"), ("/v1/issues", "get"), ("/v1/issues/{issue_id}", "get"),
    ("/v1/issues/{issue_id}", "patch"), ("/v1/issues/{issue_id}/close", "post"),
    ("/v1/issues/{issue_id}/reopen", "post"), ("/v1/issues/{issue_id}/activity", "get"),
    ("/v1/issues/{issue_id}/comments", "post"), ("/v1/issues/{issue_id}/comments", "get"),
    ("/v1/issues/bulk", "post"), ("/v1/issues/{issue_id}/link-pattern", "post"),
    ("/v1/issues/{issue_id}/unlink-pattern", "post"),
}


def test_every_v1_route_declares_a_scope(settings: Settings) -> None:
    app = create_app(settings, configure_logging=False)
    routes = [(path, handler) for path, handler in http_handlers(app)
              if path.startswith("/v1") and not is_preflight(handler)]

    assert undeclared_routes(routes) == []
    declared = {scope for _, handler in routes for scope in (route_scope(handler) or "").replace("|", " ").split()}
    assert declared <= ALL_SCOPES
    assert {"issues:read", "issues:write", "members:read", "members:write", "members:admin"} <= declared
    assert {route_scope(handler) for path, handler in routes if path.startswith("/v1/audit-log")} == {"audit:read"}


async def test_openapi_lists_every_issue_route_with_bearer_auth_and_error_envelopes(
        api: AsyncTestClient) -> None:  # type: ignore[type-arg]
    schema = (await api.get("/openapi.json")).json()

    operations = {(path, method): op for path, item in schema["paths"].items() for method, op in item.items()
                  if method in {"get", "post", "patch", "put", "delete"}}
    assert set(operations) >= ISSUE_ROUTES
    assert schema["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    for key in ISSUE_ROUTES:
        assert operations[key]["security"] == [{"BearerAuth": []}], key
        assert {"400", "401", "403", "429"} <= set(operations[key]["responses"]), key
    for path in ("/health", "/ready", "/metrics"):
        assert path in schema["paths"]


async def test_every_operation_has_a_unique_lower_camel_case_id_a_generated_client_can_use(
        api: AsyncTestClient) -> None:  # type: ignore[type-arg]
    schema = (await api.get("/openapi.json")).json()

    ids = {(path, method): op.get("operationId") for path, item in schema["paths"].items()
           for method, op in item.items() if method in {"get", "post", "patch", "put", "delete"}}
    assert None not in ids.values() and len(set(ids.values())) == len(ids)
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", op_id) for op_id in ids.values()), ids
    assert (ids["/v1/issues", "get"], ids["/v1/issues", "post"], ids["/v1/issues/{issue_id}", "get"]) == (
        "listIssues", "createIssue", "getIssue")


async def test_request_bodies_that_refuse_unknown_fields_say_so(api: AsyncTestClient) -> None:  # type: ignore[type-arg]
    schemas = (await api.get("/openapi.json")).json()["components"]["schemas"]

    assert schemas["OpenIssueRequest"]["additionalProperties"] is False
    assert schemas["CreateApiTokenRequest"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["NewUser"]  # SCIM ignores attributes it does not use (RFC 7643)


async def test_docs_page_is_served(api: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await api.get("/docs")

    assert response.status_code == 200 and "swagger" in response.text.lower()


async def test_health_and_ready_report_ok(api: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await api.get("/health")).json() == {"status": "ok", "checks": {}}
    ready = await api.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok", "nats": "ok",
                                                                    "migrations": "ok"}


async def test_readiness_documents_its_503(api: AsyncTestClient) -> None:  # type: ignore[type-arg]
    responses = (await api.get("/openapi.json")).json()["paths"]["/ready"]["get"]["responses"]

    assert responses["503"]["content"]["application/json"]["schema"] == responses["200"]["content"][
        "application/json"]["schema"]


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/.well-known/causeloop-dev-jwks.json"])
async def test_root_routes_answer_and_document_the_input_policys_400(
        api: AsyncTestClient, path: str) -> None:  # type: ignore[type-arg]
    documented = (await api.get("/openapi.json")).json()["paths"][path]["get"]["responses"]
    response = await api.get(f"{path}?q=a%00b")

    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"
    assert {"400", "429"} <= set(documented)


async def test_metrics_expose_head_checkpoints_lag_and_parked(api: AsyncTestClient) -> None:  # type: ignore[type-arg]
    text = (await api.get("/metrics")).text

    for metric in ("causeloop_event_store_head_position", "causeloop_relay_position",
                   'causeloop_projection_position{projection="issues"}',
                   'causeloop_projection_lag_seconds{projection="issues"}',
                   'causeloop_projection_parked_messages{projection="issues"}'):
        assert metric in text
