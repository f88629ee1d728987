"""The OpenAPI document (every /v1 route the app serves, with its security and error responses), the route table's
declared scopes, and the operational endpoints."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from api.app import create_app
from api.core.auth import http_handlers, is_preflight, is_public, route_scope, undeclared_routes
from domain.identity.roles import ALL_SCOPES
from tests.e2e.conftest import Tenant
from tests.e2e.test_service_accounts_api import bearer, create_account, issue_token

pytestmark = [pytest.mark.postgres, pytest.mark.nats]

ISSUE_ROUTES = {
    ("/v1/issues", "post"), ("/v1/issues", "get"), ("/v1/issues/{issue_id}", "get"),
    ("/v1/issues/{issue_id}", "patch"), ("/v1/issues/{issue_id}/close", "post"),
    ("/v1/issues/{issue_id}/reopen", "post"), ("/v1/issues/{issue_id}/activity", "get"),
    ("/v1/issues/{issue_id}/comments", "post"), ("/v1/issues/{issue_id}/comments", "get"),
    ("/v1/issues/bulk", "post"), ("/v1/issues/{issue_id}/link-pattern", "post"),
    ("/v1/issues/{issue_id}/unlink-pattern", "post"),
}
METHODS = {"get", "post", "patch", "put", "delete"}
PUBLIC_ROUTES = {
    ("/v1/auth/exchange", "post"): "sign-in: the caller has no Causeloop token yet; the Clerk session token in the "
                                   "body is verified instead",
    ("/v1/auth/refresh", "post"): "the refresh token in the body is the credential",
    ("/v1/webhooks/inbound/{connector_id}", "post"): "a tool pushes; the HMAC signature over the body is the "
                                                      "credential (401 when wrong)",
    ("/v1/connectors/oauth/callback", "get"): "the provider redirects the browser here; the signed `state` is the "
                                              "credential",
}
"""The /v1 routes that take no bearer token, each with the reason. `POST /v1/invitations/accept` is not one: the
invitee signs in first and accepts with their own token. SCIM lives under /scim/v2 with its own scheme."""
NEVER_FORBIDDEN = {
    ("/v1/users/me", "get"): "any valid token reads its own profile, even where MFA is required: nothing answers 403",
    ("/v1/users/me", "patch"): "as GET: the caller edits only themself, and the MFA requirement exempts it",
}


def served_v1_operations(settings: Settings) -> dict[tuple[str, str], bool]:
    """(path as OpenAPI writes it, method) → public, for every /v1 HTTP route of the app itself."""
    app = create_app(settings, configure_logging=False)
    return {(re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path), method.lower()): is_public(handler)
            for path, handler in http_handlers(app) if path.startswith("/v1") and not is_preflight(handler)
            for method in handler.http_methods if method.lower() in METHODS}


def documented_operations(schema: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(path, method): op for path, item in schema["paths"].items() for method, op in item.items()
            if method in METHODS}


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


async def test_openapi_documents_every_v1_route_the_app_serves_and_nothing_else(
        api: AsyncTestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    served = served_v1_operations(settings)
    documented = {key for key in documented_operations((await api.get("/openapi.json")).json())
                  if key[0].startswith("/v1")}

    assert len(served) > 100
    assert sorted(set(served) - documented) == []
    assert sorted(documented - set(served)) == []


async def test_public_v1_routes_are_exactly_the_listed_exemptions(
        api: AsyncTestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    served = served_v1_operations(settings)
    operations = documented_operations((await api.get("/openapi.json")).json())

    assert {key for key, public in served.items() if public} == set(PUBLIC_ROUTES)
    for key in PUBLIC_ROUTES:
        assert operations[key].get("security", []) == [], key
        assert {"400", "429"} <= set(operations[key]["responses"]), key


async def test_every_authenticated_v1_route_documents_bearer_auth_and_its_error_responses(
        api: AsyncTestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    operations = documented_operations((await api.get("/openapi.json")).json())
    gaps = []
    for key, public in sorted(served_v1_operations(settings).items()):
        if public:
            continue
        op = operations[key]
        expected = {"401", "429"} | ({"403"} if key not in NEVER_FORBIDDEN else set())
        if op.get("requestBody") or any(p["in"] == "query" for p in op.get("parameters", [])):
            expected.add("400")
        if "{" in key[0]:
            expected.add("404")
        if op.get("security") != [{"BearerAuth": []}]:
            gaps.append(f"{key}: security {op.get('security')}")
        present = expected & set(op["responses"])
        if expected - present:
            gaps.append(f"{key}: no {sorted(expected - present)}")
        if outside := sorted(code for code in present if "ErrorEnvelope" not in str(op["responses"][code])):
            gaps.append(f"{key}: {outside} not in the error envelope")

    assert gaps == []


async def test_the_documented_403_and_404_of_the_user_only_routes_are_what_a_service_account_gets(
        api: AsyncTestClient, tenant: Tenant) -> None:  # type: ignore[type-arg]
    account = await create_account(api, tenant)
    service = bearer((await issue_token(api, tenant, account["id"]))["secret"])
    operations = documented_operations((await api.get("/openapi.json")).json())

    for method, path, body, status in (("POST", "/v1/me/mfa/totp", None, 403),
                                       ("POST", "/v1/me/mfa/totp/verify", {"code": "123456"}, 403),
                                       ("DELETE", "/v1/me/mfa/totp", None, 403),
                                       ("GET", "/v1/users/me", None, 404),
                                       ("PATCH", "/v1/users/me", {"name": "robot"}, 404)):
        response = await api.request(method, path, json=body, headers=service)
        assert response.status_code == status, (method, path, response.text)
        assert str(status) in operations[path, method.lower()]["responses"], (method, path)


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
