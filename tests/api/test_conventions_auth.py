"""Bearer tokens on /v1, scopes per route, the route table's declarations and the OpenAPI security scheme."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import ImproperlyConfiguredException
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from adapters.tokens import Principal
from api.core.auth import http_handlers, requires, route_scope, undeclared_routes
from api.core.conventions import convention_config
from tests.api.conftest import READ, WRITE, AppClient, bearer, build_app, signed_claims, token_for

pytestmark = pytest.mark.postgres

OTHER_SECRET = "another-secret-that-is-long-enough-0123456789"


async def test_a_valid_token_reaches_the_handler_as_the_principal(client: AppClient, settings: Settings) -> None:
    token = token_for(settings, scopes=frozenset({READ}), subject="usr_alice")

    response = await client.get("/v1/me", headers=bearer(token))

    assert response.status_code == 200
    assert response.json() == {"subject": "usr_alice", "scopes": [READ]}


def bad_tokens(settings: Settings) -> dict[str, str]:
    good = token_for(settings)
    return {
        "expired": token_for(settings, now=datetime.now(UTC) - timedelta(hours=73)),
        "bad signature": signed_claims(OTHER_SECRET),
        "alg none": signed_claims("", algorithm="none"),
        "wrong audience": signed_claims(settings.jwt_secret, aud="someone-else"),
        "wrong issuer": signed_claims(settings.jwt_secret, iss="someone-else"),
        "missing workspace": signed_claims(settings.jwt_secret, ws=None),
        "numeric string exp": signed_claims(settings.jwt_secret, exp=str(int(time.time()) + 3600)),
        "numeric string iat": signed_claims(settings.jwt_secret, iat=str(int(time.time()))),
        "boolean nbf": signed_claims(settings.jwt_secret, nbf=True),
        "truncated": good[:-5],
        "garbage": "not-a-jwt",
    }


@pytest.mark.parametrize("kind", ["expired", "bad signature", "alg none", "wrong audience", "wrong issuer",
                                  "missing workspace", "numeric string exp", "numeric string iat", "boolean nbf",
                                  "truncated", "garbage"])
async def test_a_bad_token_is_401(client: AppClient, settings: Settings, kind: str) -> None:
    response = await client.get("/v1/me", headers=bearer(bad_tokens(settings)[kind]))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"])
async def test_a_missing_or_non_bearer_authorization_is_401(client: AppClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}

    response = await client.get("/v1/me", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_the_scheme_word_is_case_insensitive(client: AppClient, settings: Settings) -> None:
    response = await client.get("/v1/me", headers={"Authorization": f"bearer {token_for(settings)}"})

    assert response.status_code == 200


async def test_a_token_without_the_routes_scope_is_403(client: AppClient, settings: Settings) -> None:
    response = await client.get("/v1/items", headers=bearer(token_for(settings, scopes=frozenset({WRITE}))))

    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"required_scope": READ}


async def test_an_authenticated_route_needs_a_token_but_no_scope(client: AppClient, settings: Settings) -> None:
    assert (await client.get("/v1/me")).status_code == 401
    assert (await client.get("/v1/me", headers=bearer(token_for(settings, scopes=frozenset())))).status_code == 200


async def test_public_routes_need_no_token(client: AppClient) -> None:
    assert (await client.post("/v1/public/echo", json={"title": "hi"})).status_code == 200
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/docs/openapi.json")).status_code == 200
    assert (await client.get("/openapi.json")).json()["openapi"].startswith("3.")


async def test_a_preflight_needs_no_token(client: AppClient) -> None:
    assert (await client.options("/v1/things")).status_code == 204


async def test_the_principal_loader_can_revoke_a_valid_token(settings: Settings) -> None:
    async def revoked(principal: Principal, state: State) -> Principal | None:
        return None if principal.subject == "usr_revoked" else principal

    app = build_app(settings, principal_loader=revoked)
    async with AsyncTestClient(app=app) as client:
        ok = await client.get("/v1/me", headers=bearer(token_for(settings, subject="usr_active")))
        gone = await client.get("/v1/me", headers=bearer(token_for(settings, subject="usr_revoked")))

    assert ok.status_code == 200
    assert gone.status_code == 401


async def test_the_principal_loader_can_narrow_scopes_to_the_current_role(settings: Settings) -> None:
    async def demoted(principal: Principal, state: State) -> Principal | None:
        return msgspec.structs.replace(principal, scopes=frozenset({READ}))

    async with AsyncTestClient(app=build_app(settings, principal_loader=demoted)) as client:
        response = await client.post("/v1/things", json={"title": "a"}, headers=bearer(token_for(settings)))

    assert response.status_code == 403


def test_every_v1_route_declares_its_access(settings: Settings) -> None:
    app = build_app(settings)

    scopes = {(path, method): route_scope(handler) for path, handler in http_handlers(app)
              for method in handler.http_methods}

    assert undeclared_routes(http_handlers(app)) == []
    assert scopes[("/v1/things", "POST")] == WRITE
    assert scopes[("/v1/items", "GET")] == READ
    assert scopes[("/v1/me", "GET")] is None


@get("/v1/forgotten", sync_to_thread=False)
def forgotten() -> str:
    return "nobody said who may call this"


def test_an_app_with_an_undeclared_v1_route_does_not_build(settings: Settings) -> None:
    with pytest.raises(ImproperlyConfiguredException, match="/v1/forgotten"):
        Litestar(route_handlers=[forgotten], **convention_config(settings))


def things(path: str) -> object:
    @get(path, guards=[requires(READ)], sync_to_thread=False)
    def list_things() -> list[str]:
        return []
    return list_things


def test_two_operations_that_would_share_an_operation_id_do_not_build(settings: Settings) -> None:
    with pytest.raises(ImproperlyConfiguredException, match="share the operationId 'listThings'"):
        Litestar(route_handlers=[things("/v1/things"), things("/v1/other-things")], **convention_config(settings))


def test_undeclared_routes_are_listed_when_enforcement_is_off(settings: Settings) -> None:
    app = Litestar(route_handlers=[forgotten], **convention_config(settings, enforce_declared_access=False))

    assert undeclared_routes(http_handlers(app)) == ["GET /v1/forgotten"]


def test_requiring_an_unknown_scope_fails_at_declaration() -> None:
    with pytest.raises(ValueError, match="issue:reed"):
        requires("issue:reed")


async def test_openapi_declares_bearer_auth_on_protected_operations_only(client: AppClient) -> None:
    schema = (await client.get("/docs/openapi.json")).json()

    assert schema["components"]["securitySchemes"]["BearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": schema["components"]["securitySchemes"]["BearerAuth"]["description"],
    }
    assert schema["paths"]["/v1/things"]["post"]["security"] == [{"BearerAuth": []}]
    assert schema["paths"]["/v1/me"]["get"]["security"] == [{"BearerAuth": []}]
    assert "security" not in schema["paths"]["/v1/public/echo"]["post"]
    assert "security" not in schema["paths"]["/health"]["get"]


async def test_openapi_documents_the_error_envelope(client: AppClient) -> None:
    schema = (await client.get("/docs/openapi.json")).json()

    responses = schema["paths"]["/v1/things"]["post"]["responses"]
    assert {"400", "401", "403", "429"} <= set(responses)
    assert responses["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert responses["429"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert "401" not in schema["paths"]["/v1/public/echo"]["post"]["responses"]
