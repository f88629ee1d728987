"""Watching patterns (`pattern.updated` notifications) and each user's notification preferences. Reads come from
the `notifications` read model; writes are commands on the user's own streams."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody

from adapters.postgres import tenant_transaction
from adapters.secret_box import MasterKeyMissing
from adapters.tokens import Principal
from api.core.auth import authenticated, requires
from api.core.consistency import settle
from api.core.deps import provide_caller
from api.core.errors import ApiError, error_responses
from api.core.pagination import Cursor, Limit, Page, cursor_key, offset_of, offset_page
from api.notifications import schemas
from api.patterns.routes import pattern_ref
from commands.notifications import NotificationSettingsCommands, PreferencesInput
from domain.notifications import preferences as prefs
from domain.notifications.events import EventChannels
from projections.notifications import queries
from projections.notifications.projector import NAME as NOTIFICATIONS

WATCHED_ORDER = "-watched_at"
"""The watched patterns' one order (most recently watched first): what their cursors are bound to."""
USERS_ONLY = "forbidden: only a user (not a service account) has notifications"


def _commands(request: Request[Any, Any, Any]) -> NotificationSettingsCommands:
    commands: NotificationSettingsCommands = request.app.state.notification_settings_commands
    return commands


def _user(request: Request[Any, Any, Any]) -> str:
    """Notifications are a user's: a service account watches nothing and has no preferences."""
    principal: Principal = request.user
    if not principal.subject.startswith("usr_"):
        raise ApiError(403, "forbidden", "Only a user has notifications")
    return principal.subject


class PatternWatchController(Controller):
    path = "/v1/patterns"
    tags = ("Patterns",)

    @post("/{pattern_id:str}/watch", guards=[requires("patterns:read")], status_code=204,
          responses=error_responses(e403=USERS_ONLY, e404="not_found: no such pattern"))
    async def watch_pattern(self, request: Request[Any, Any, Any], pattern_id: FromPath[str]) -> Response[None]:
        """Watch a pattern: a `pattern.updated` notification each time it is renamed, retagged, changes status or is
        merged. Idempotent (watching again changes nothing)."""
        accepted = await _commands(request).watch(provide_caller(request), _user(request), pattern_ref(pattern_id))
        return Response(None, status_code=204, headers=await settle(request.app.state, (NOTIFICATIONS,
                                                                                          accepted.position)))

    @delete("/{pattern_id:str}/watch", guards=[requires("patterns:read")], status_code=204,
            responses=error_responses(e403=USERS_ONLY, e404="not_found: no such pattern"))
    async def unwatch_pattern(self, request: Request[Any, Any, Any], pattern_id: FromPath[str]) -> Response[None]:
        """Stop watching a pattern. Idempotent (unwatching a pattern one does not watch changes nothing)."""
        accepted = await _commands(request).unwatch(provide_caller(request), _user(request), pattern_ref(pattern_id))
        return Response(None, status_code=204, headers=await settle(request.app.state, (NOTIFICATIONS,
                                                                                          accepted.position)))


class MyNotificationSettingsController(Controller):
    path = "/v1/me"
    tags = ("Notifications",)

    @get("/watched-patterns", guards=[requires("patterns:read")], responses=error_responses(e403=USERS_ONLY))
    async def list_watched_patterns(self, request: Request[Any, Any, Any], limit: Limit = 25, cursor: Cursor = None
                                    ) -> Page[queries.WatchedPattern]:
        """The patterns the signed-in user watches, most recently watched first."""
        user = _user(request)
        key = cursor_key(request)
        offset = offset_of(key, cursor, WATCHED_ORDER)
        caller = provide_caller(request)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            rows, total = await queries.watched_patterns(conn, caller.workspace_id, user, limit=limit, offset=offset)
        return offset_page(rows, offset=offset, total=total, key=key, sort=WATCHED_ORDER)

    @get("/notification-preferences", guards=[authenticated], responses=error_responses(e403=USERS_ONLY))
    async def get_notification_preferences(self, request: Request[Any, Any, Any]) -> schemas.PreferencesView:
        """The signed-in user's notification preferences in this workspace (the defaults until set). Secrets are
        masked. `events.<type>.in_app` off keeps that type out of the feed; `email`, `slack`, `teams` and
        `pagerduty` send it on that channel (when configured), realtime or batched per `digest`; `min_severity`
        holds back `issue.created` below it everywhere, `min_risk_score` holds back `prediction.alert.fired` below
        it on the channels."""
        return await _preferences(request, _user(request))

    @put("/notification-preferences", guards=[authenticated],
         responses=error_responses(e400="validation_error: a field is invalid (`details.field` names it)",
                                   e403=USERS_ONLY, e503="service_unavailable: secrets need CAUSELOOP_MASTER_KEY"))
    async def put_notification_preferences(self, request: Request[Any, Any, Any],
                                           data: JSONBody[schemas.PutPreferencesRequest]
                                           ) -> Response[schemas.PreferencesView]:
        """Replace the signed-in user's notification preferences: channels (Slack `https://hooks.slack.com/…`,
        Teams `https://….webhook.office.com/…`, PagerDuty 32-character integration key; left out or sent back
        masked keeps the stored one, null removes it), `min_severity` p1–p4, `min_risk_score` 0–100, `digest`,
        and per type `{in_app, email, slack, teams, pagerduty}`. E-mail turns on when any type has `email`."""
        user = _user(request)
        wanted = PreferencesInput(
            email=data.channels.email, slack_webhook_url=data.channels.slack_webhook_url,
            teams_webhook_url=data.channels.teams_webhook_url,
            pagerduty_integration_key=data.channels.pagerduty_integration_key, min_severity=data.min_severity.value,
            min_risk_score=data.min_risk_score, digest=data.digest.value,
            events={kind: EventChannels(in_app=c.in_app, email=c.email, slack=c.slack, teams=c.teams,
                                        pagerduty=c.pagerduty) for kind, c in data.by_type().items()})
        try:
            accepted = await _commands(request).set_preferences(provide_caller(request), user, wanted)
        except MasterKeyMissing:
            raise ApiError(503, "service_unavailable",
                           "Notification channel secrets need CAUSELOOP_MASTER_KEY (not configured)") from None
        headers = await settle(request.app.state, (NOTIFICATIONS, accepted.position))
        return Response(await _preferences(request, user), headers=headers)


async def _preferences(request: Request[Any, Any, Any], user: str) -> schemas.PreferencesView:
    caller = provide_caller(request)
    async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
        stored = await queries.preferences(conn, caller.workspace_id, user)
    if stored is None:
        defaults = prefs.Preferences()
        return schemas.PreferencesView(
            channels=schemas.ChannelsView(email=defaults.email, slack_webhook_url=None, teams_webhook_url=None,
                                          pagerduty_integration_key=None),
            min_severity=defaults.min_severity, min_risk_score=defaults.min_risk_score, digest=defaults.digest,
            events={kind: schemas.EventChannelsView(in_app=c.in_app, email=c.email, slack=c.slack, teams=c.teams,
                                                    pagerduty=c.pagerduty)
                    for kind, c in defaults.events.items()}, updated_at=None)
    return schemas.PreferencesView(
        channels=schemas.ChannelsView(email=stored.email, slack_webhook_url=_masked(stored.slack_hint),
                                      teams_webhook_url=_masked(stored.teams_hint),
                                      pagerduty_integration_key=_masked(stored.pagerduty_hint)),
        min_severity=stored.min_severity, min_risk_score=stored.min_risk_score, digest=stored.digest,
        events={kind: schemas.EventChannelsView(**channels) for kind, channels in sorted(stored.events.items())},
        updated_at=stored.updated_at)


def _masked(hint: str | None) -> str | None:
    return None if hint is None else prefs.MASK + hint

