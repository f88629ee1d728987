"""The HTTP API's composition root: routes, conventions, lifespan."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State
from litestar.logging import LoggingConfig

from adapters.settings import Settings
from api.audit.routes import AuditLogController
from api.connectors.inbound import receive_inbound_webhook
from api.connectors.lifespan import connectors_lifespan
from api.connectors.oauth import complete_connector_oauth
from api.connectors.routes import ConnectorCatalogController, ConnectorsController, SyncRunsController
from api.core.conventions import convention_config, openapi_json
from api.core.lifespan import lifespan
from api.core.principals import load_principal
from api.credentials.authn import resolve_api_token
from api.credentials.scim_tokens import ScimTokensController
from api.credentials.service_accounts import ServiceAccountsController
from api.credentials.tokens import ApiTokensController
from api.health.routes import get_health, get_metrics, get_readiness
from api.ingestion.routes import IngestionController
from api.issues.routes import IssuesController
from api.members.invitations import InvitationsController
from api.members.me import MeController
from api.members.roles import RolesController
from api.members.routes import MembersController
from api.notifications.lifespan import notifications_lifespan
from api.notifications.routes import MyNotificationSettingsController, PatternWatchController
from api.patterns.routes import IssueAnalysisController, PatternsController
from api.predictions.routes import AlertRulesController, NotificationsController, PredictionsController
from api.recommendations.routes import RecommendationsController
from api.scim.auth import SCIM_SCHEME, SCIM_SCHEME_NAME
from api.scim.routes import ScimController
from api.signin import mfa_routes
from api.signin import routes as signin_routes
from api.signin.lifespan import signin_lifespan
from api.webhooks.lifespan import webhooks_lifespan
from api.webhooks.routes import WebhooksController
from api.workspace_settings.routes import WorkspaceSettingsController

SIGNIN_ROUTES = [signin_routes.exchange_session_token, signin_routes.refresh_tokens, signin_routes.get_dev_jwks,
                 mfa_routes.enrol_totp,
                 mfa_routes.verify_totp, mfa_routes.remove_totp]


def create_app(settings: Settings, *, configure_logging: bool = True) -> Litestar:
    """One app per process; collaborators are opened in the lifespan, never at import time."""
    logging_config = LoggingConfig(root={"level": settings.log_level, "handlers": ["queue_listener"]},
                                   log_exceptions="never") if configure_logging else None
    return Litestar(
        route_handlers=[IssuesController, WorkspaceSettingsController, AuditLogController, get_health, get_readiness,
                        get_metrics,
                        openapi_json, *SIGNIN_ROUTES, MembersController, InvitationsController, RolesController,
                        MeController, ApiTokensController, ServiceAccountsController, ScimTokensController,
                        ScimController, WebhooksController, ConnectorCatalogController, ConnectorsController,
                        SyncRunsController, receive_inbound_webhook, complete_connector_oauth, PatternsController,
                        IssueAnalysisController, RecommendationsController, PredictionsController,
                        AlertRulesController, NotificationsController, IngestionController, PatternWatchController,
                        MyNotificationSettingsController],
        lifespan=[lifespan, signin_lifespan, webhooks_lifespan, connectors_lifespan, notifications_lifespan],
        state=State({"settings": settings}),
        logging_config=logging_config,
        debug=False,
        **convention_config(settings, security_schemes={SCIM_SCHEME_NAME: SCIM_SCHEME}, principal_loader=load_principal,
                            token_resolver=resolve_api_token),
    )

