"""OAuth connectors: start (an `authorize_url` with a signed state that expires in 10 minutes) and the callback the
provider redirects the browser to, which stores the tokens as the connector's credentials and marks it connected."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, get
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect

from adapters.providers import oauth
from adapters.providers.http import Http, Policy, ProviderError
from adapters.secret_box import MasterKeyMissing
from adapters.settings import Settings
from api.core.auth import PUBLIC
from api.core.consistency import settle
from api.core.errors import ApiError, error_responses, validation_error
from commands.caller import Caller
from commands.connectors import ConnectorCommands
from domain.events import Actor, ActorKind
from domain.ids import WorkspaceId
from projections.connectors.projector import NAME as CONNECTORS_PROJECTION


class OAuthStart(msgspec.Struct, kw_only=True):
    authorize_url: str
    """Send the person's browser here; the provider comes back to GET /v1/connectors/oauth/callback."""
    expires_at: datetime
    """The state in the URL is refused after this (10 minutes)."""


def start(settings: Settings, connector_type: str, config: dict[str, object], connector_id: str,
          workspace_id: str, actor_id: str) -> OAuthStart:
    now = datetime.now(UTC)
    state = oauth.mint_state(settings, oauth.OAuthState(connector_id=connector_id, workspace_id=workspace_id,
                                                        actor_id=actor_id), now)
    try:
        url = oauth.authorize_url(settings, connector_type, config, state)
    except oauth.OAuthNotConfigured as exc:
        raise ApiError(503, "service_unavailable", str(exc)) from None
    return OAuthStart(authorize_url=url, expires_at=now + oauth.STATE_TTL)


def _back_to_app(settings: Settings, **params: str) -> Redirect:
    return Redirect(f"{settings.app_url.rstrip('/')}/integrations?{urlencode(params)}", status_code=302)


@get(oauth.CALLBACK_PATH, opt=PUBLIC, security=[], tags=["Connectors"], status_code=302,
     responses=error_responses(e400="validation_error: the state is missing, altered or older than 10 minutes"))
async def complete_connector_oauth(request: Request[Any, Any, Any], state: State,
                                   code: FromQuery[str | None] = None,
                                   oauth_state: Annotated[str | None, QueryParameter(
                                       name="state", description="the signed state from oauth/start")] = None,
                                   error: FromQuery[str | None] = None) -> Redirect:
    """Where the provider sends the browser back (clients never call it). Verifies the signed state, exchanges the
    code for tokens (stored encrypted as the connector's credentials: it becomes `connected`) and redirects to
    `<APP_URL>/integrations?connector_id=…&oauth=connected|denied|failed`."""
    settings: Settings = state.settings
    raw_state = oauth_state
    if not raw_state:
        raise validation_error("state", "is required")
    try:
        flow = oauth.read_state(settings, raw_state)
    except oauth.InvalidState:
        raise validation_error("state", "is not valid or has expired (10 minutes): start again") from None
    if error or not code:
        return _back_to_app(settings, connector_id=flow.connector_id, oauth="denied", reason=(error or "no code")[:100])
    commands: ConnectorCommands = state.connector_commands
    connector = await commands.connector_anywhere(flow.connector_id)
    if connector is None or connector.workspace_id != flow.workspace_id:
        return _back_to_app(settings, connector_id=flow.connector_id, oauth="failed", reason="connector deleted")
    try:
        async with Http(Policy(timeout_s=settings.connector_http_timeout_s,
                               allow_private=settings.private_provider_urls)) as http:
            credentials = await oauth.exchange_code(http, settings, connector.type, connector.config, code)
        caller = Caller(workspace_id=WorkspaceId(flow.workspace_id),
                        actor=Actor(kind=ActorKind.USER, id=flow.actor_id))
        connected = await commands.reconfigure(caller, flow.connector_id, display_name=msgspec.UNSET,
                                               config=msgspec.UNSET, schedule=msgspec.UNSET, credentials=credentials)
    except (ProviderError, MasterKeyMissing) as exc:
        return _back_to_app(settings, connector_id=flow.connector_id, oauth="failed", reason=str(exc)[:200])
    await settle(state, (CONNECTORS_PROJECTION, connected.position))  # the app's next read shows it connected
    return _back_to_app(settings, connector_id=flow.connector_id, oauth="connected")
