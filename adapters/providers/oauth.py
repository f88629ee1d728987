"""OAuth 2.0 authorization-code flow for OAuth connector types (ServiceNow, Linear, Zendesk).

The `state` is an HS256 JWT signed with JWT_SECRET (its own audience), naming the connector, its workspace and who
started the flow, and it expires 10 minutes after it is made. Client ids and secrets come from
CONNECTOR_OAUTH_CLIENTS (JSON: {"linear": {"client_id": …, "client_secret": …}, …}); `authorize_url` and
`token_url` may be overridden there too (self-hosted instances, tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import jwt
import msgspec

from adapters.providers.http import BadResponse, Http, ProviderError, decode
from adapters.settings import Settings

STATE_TTL = timedelta(minutes=10)
STATE_AUDIENCE = "causeloop-connector-oauth"
CALLBACK_PATH = "/v1/connectors/oauth/callback"


class OAuthNotConfigured(ProviderError):
    """No client id/secret for this connector type in CONNECTOR_OAUTH_CLIENTS."""


class InvalidState(Exception):
    """A state that is not ours, was altered, or has expired."""


class OAuthState(msgspec.Struct, frozen=True, kw_only=True):
    connector_id: str
    workspace_id: str
    actor_id: str


class OAuthClient(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str
    client_secret: str
    authorize_url: str | None = None
    token_url: str | None = None
    scope: str | None = None


class Tokens(msgspec.Struct, kw_only=True):
    access_token: str
    token_type: str = "bearer"
    refresh_token: str | None = None
    expires_in: int | None = None
    scope: str | None = None


def _endpoints(connector_type: str, config: Mapping[str, object]) -> tuple[str, str, str]:
    """(authorize URL, token URL, scope) of each provider's documented OAuth endpoints."""
    if connector_type == "linear":
        return "https://linear.app/oauth/authorize", "https://api.linear.app/oauth/token", "read"
    if connector_type == "zendesk":
        base = f"https://{config.get('subdomain', '')}.zendesk.com"
        return f"{base}/oauth/authorizations/new", f"{base}/oauth/tokens", "read"
    if connector_type == "servicenow":
        base = str(config.get("instance_url", "")).rstrip("/")
        return f"{base}/oauth_auth.do", f"{base}/oauth_token.do", "useraccount"
    raise OAuthNotConfigured(f"{connector_type} connectors do not use OAuth")


def client_for(settings: Settings, connector_type: str) -> OAuthClient:
    try:
        clients = msgspec.json.decode(settings.connector_oauth_clients or "{}", type=dict[str, OAuthClient])
    except msgspec.DecodeError:
        raise OAuthNotConfigured("CONNECTOR_OAUTH_CLIENTS is not valid JSON") from None
    client = clients.get(connector_type)
    if client is None:
        raise OAuthNotConfigured(f"no OAuth client for {connector_type} in CONNECTOR_OAUTH_CLIENTS")
    return client


def redirect_uri(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + CALLBACK_PATH


def mint_state(settings: Settings, state: OAuthState, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {**msgspec.structs.asdict(state), "aud": STATE_AUDIENCE, "iat": int(issued.timestamp()),
              "exp": int((issued + STATE_TTL).timestamp()), "nonce": uuid.uuid4().hex}
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def read_state(settings: Settings, token: str) -> OAuthState:
    try:
        claims = jwt.decode(token, settings.jwt_secret, algorithms=["HS256"], audience=STATE_AUDIENCE,
                            options={"require": ["exp", "iat", "aud"]})
        return msgspec.convert(claims, OAuthState)
    except (jwt.PyJWTError, msgspec.ValidationError) as exc:
        raise InvalidState(str(exc)) from None


def authorize_url(settings: Settings, connector_type: str, config: Mapping[str, object], state: str) -> str:
    client = client_for(settings, connector_type)
    default_authorize, _, scope = _endpoints(connector_type, config)
    query = {"response_type": "code", "client_id": client.client_id, "redirect_uri": redirect_uri(settings),
             "scope": client.scope or scope, "state": state}
    return f"{client.authorize_url or default_authorize}?{urlencode(query)}"


async def exchange_code(http: Http, settings: Settings, connector_type: str, config: Mapping[str, object],
                        code: str) -> dict[str, str]:
    """The provider's tokens for `code`, as the connector's credentials."""
    client = client_for(settings, connector_type)
    _, default_token, _ = _endpoints(connector_type, config)
    response = await http.post_form(client.token_url or default_token, headers={"Accept": "application/json"},
                                    form={"grant_type": "authorization_code", "code": code,
                                          "redirect_uri": redirect_uri(settings), "client_id": client.client_id,
                                          "client_secret": client.client_secret})
    tokens: Tokens = decode(response, Tokens)
    if not tokens.access_token:
        raise BadResponse("the token endpoint answered no access_token")
    credentials = {"access_token": tokens.access_token, "token_type": tokens.token_type}
    if tokens.refresh_token:
        credentials["refresh_token"] = tokens.refresh_token
    if tokens.expires_in is not None:
        credentials["expires_at"] = (datetime.now(UTC) + timedelta(seconds=tokens.expires_in)).isoformat()
    return credentials
