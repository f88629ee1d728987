"""Predictions (the prediction worker's forecasts, their summary, forecast series and measured accuracy, feedback
and dismissal), alert rules, and each user's notification feed. Reads come from the `predictions` and
`notifications` read models; writes are commands."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from adapters.postgres import tenant_transaction
from adapters.tokens import Principal
from api.core.auth import authenticated, requires
from api.core.consistency import settle
from api.core.deps import provide_caller, read_one
from api.core.errors import error_responses, not_found
from api.core.pagination import (
    Cursor,
    Limit,
    Page,
    SortParam,
    cursor_key,
    decode_cursor,
    offset_of,
    offset_page,
    page_of,
    parse_choices,
    parse_pattern_filter,
    parse_sort,
    sort_spec,
)
from api.predictions import schemas
from commands.predictions import PredictionCommands, rule_id_of
from domain.ids import canonical
from domain.predictions.events import AlertThreshold
from domain.predictions.prediction import RuleEdit
from projections.notifications import queries as feed_queries
from projections.notifications.projector import NAME as NOTIFICATIONS
from projections.predictions import queries
from projections.predictions.projector import NAME as PREDICTIONS
from projections.workspace_settings.queries import workspace_settings

STATUSES = {"active", "dismissed", "expired"}
IMPACTS = {"critical", "high", "medium", "low"}
RULES_ORDER = "created_at"
"""The alert rules' one order (oldest first): what their cursors are bound to."""
WindowDays = Annotated[int, QueryParameter(ge=1, le=365, description="Prediction window in days (7, 30 or 90)")]
FORECAST_DAYS = 14


def _commands(request: Request[Any, Any, Any]) -> PredictionCommands:
    commands: PredictionCommands = request.app.state.prediction_commands
    return commands


def _prediction_ref(prediction_id: str) -> str:
    public = canonical("prd", prediction_id)
    if public is None:
        raise not_found("prediction", prediction_id)
    return public


def _rule_ref(rule_id: str) -> str:
    public = canonical("alr", rule_id)
    if public is None:
        raise not_found("alert_rule", rule_id)
    return public


async def _threshold(request: Request[Any, Any, Any], workspace_id: str) -> float:
    async with tenant_transaction(request.app.state.read_pool, workspace_id) as conn:
        return float((await workspace_settings(conn, workspace_id)).ai.alert_probability_threshold)


async def _prediction(request: Request[Any, Any, Any], prediction_id: str) -> queries.PredictionView:
    return await read_one(request, "prediction", prediction_id, queries.get_prediction)


class PredictionsController(Controller):
    path = "/v1/predictions"
    tags = ("Predictions",)

    @get("/", guards=[requires("predictions:read")])
    async def list_predictions(
        self, request: Request[Any, Any, Any], limit: Limit = 25, cursor: Cursor = None, sort: SortParam = None,
        pattern_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        status: Annotated[str | None, QueryParameter(max_length=100, description="active, dismissed, expired "
                                                     "(comma-separated)")] = None,
        impact: Annotated[str | None, QueryParameter(max_length=100, description="critical, high, medium, low "
                                                     "(comma-separated)")] = None,
        min_probability: Annotated[float | None, QueryParameter(ge=0, le=1)] = None,
        window_days: Annotated[int | None, QueryParameter(ge=1, le=365)] = None,
    ) -> Page[queries.PredictionView]:
        """List predictions (newest first by default; sort `predicted_at`, `probability`, `expires_at`)."""
        field, descending = parse_sort(sort, set(queries.SORTS), "-predicted_at")
        key, order = cursor_key(request), sort_spec(field, descending)
        offset = offset_of(key, cursor, order)
        pattern = parse_pattern_filter(pattern_id)
        filters = queries.PredictionFilters(pattern_id=pattern, status=parse_choices("status", status, STATUSES),
                                            impact=parse_choices("impact", impact, IMPACTS),
                                            min_probability=min_probability, window_days=window_days)
        caller = provide_caller(request)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            rows, total = await queries.list_predictions(conn, caller.workspace_id, filters, sort=field,
                                                         descending=descending, limit=limit, offset=offset)
        return offset_page(rows, offset=offset, total=total, key=key, sort=order)

    @get("/summary", guards=[requires("predictions:read")])
    async def get_prediction_summary(self, request: Request[Any, Any, Any], window_days: WindowDays = 7
                                     ) -> queries.Summary:
        """KPI tiles over the active predictions of a window: total, high probability (≥ 0.80), above the
        workspace's alert threshold, average probability."""
        caller = provide_caller(request)
        threshold = await _threshold(request, caller.workspace_id)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            return await queries.summary(conn, caller.workspace_id, window_days, threshold)

    @get("/forecast", guards=[requires("predictions:read")])
    async def get_prediction_forecast(
        self, request: Request[Any, Any, Any], window_days: WindowDays = 7,
        pattern_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> queries.Forecast:
        """Composite risk: the observed series (highest probability of the predictions live each day, last 14
        days), the projected series (probability of a recurrence by each of the next 14 days, from the active
        predictions' decayed rates), the alert threshold and the first projected breach."""
        pattern = parse_pattern_filter(pattern_id)
        caller = provide_caller(request)
        threshold = await _threshold(request, caller.workspace_id)
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            observed = await queries.observed_series(conn, caller.workspace_id, pattern, window_days,
                                                     today - timedelta(days=FORECAST_DAYS - 1), FORECAST_DAYS)
            rates = await queries.active_rates(conn, caller.workspace_id, pattern, window_days)
        projected = []
        for day in range(1, FORECAST_DAYS + 1):
            value = max((1 - math.exp(-rate * day) for _, rate in rates), default=0.0)
            projected.append(queries.SeriesPoint(date=(today + timedelta(days=day)).date().isoformat(),
                                                 value=round(value, 4)))
        breach = next((point for point in projected if point.value >= threshold), None)
        return queries.Forecast(pattern_id=pattern, window_days=window_days, threshold=threshold,
                                observed=[queries.SeriesPoint(date=d, value=round(v, 4)) for d, v in observed],
                                projected=projected, breach=breach)

    @get("/accuracy", guards=[requires("predictions:read")])
    async def get_prediction_accuracy(
        self, request: Request[Any, Any, Any],
        window_days: Annotated[int | None, QueryParameter(ge=1, le=365)] = None,
        threshold: Annotated[float | None, QueryParameter(ge=0, le=1, description="Default: the workspace's "
                                                          "alert threshold")] = None,
    ) -> queries.Accuracy:
        """Measured over resolved predictions (the pattern recurred, or the window ended): precision and recall of
        "probability ≥ threshold", Brier score of the generated probabilities, mean lead time to the recurrence."""
        caller = provide_caller(request)
        cut = threshold if threshold is not None else await _threshold(request, caller.workspace_id)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            return await queries.accuracy(conn, caller.workspace_id, window_days, cut)

    @get("/{prediction_id:str}", guards=[requires("predictions:read")])
    async def get_prediction(self, request: Request[Any, Any, Any], prediction_id: FromPath[str]
                             ) -> queries.PredictionView:
        """Retrieve one prediction."""
        return await _prediction(request, _prediction_ref(prediction_id))

    @post("/{prediction_id:str}/feedback", guards=[requires("predictions:write")], status_code=200,
          responses=error_responses(e409="conflict: changed concurrently; retry"))
    async def give_prediction_feedback(self, request: Request[Any, Any, Any], prediction_id: FromPath[str],
                                       data: JSONBody[schemas.FeedbackRequest]) -> Response[queries.PredictionView]:
        """Say whether the prediction was accurate (kept beside the measured accuracy)."""
        public_id = _prediction_ref(prediction_id)
        accepted = await _commands(request).feedback(public_id, provide_caller(request), data.outcome.value,
                                                     data.comment)
        headers = await settle(request.app.state, (PREDICTIONS, accepted.position))
        return Response(await _prediction(request, public_id), headers=headers)

    @post("/{prediction_id:str}/dismiss", guards=[requires("predictions:write")], status_code=200,
          responses=error_responses(e409="conflict: changed concurrently; retry"))
    async def dismiss_prediction(self, request: Request[Any, Any, Any], prediction_id: FromPath[str],
                                 data: JSONBody[schemas.DismissRequest | None] = None
                                 ) -> Response[queries.PredictionView]:
        """Dismiss the prediction (it still resolves, and counts in the accuracy: dismissing is not an outcome)."""
        public_id = _prediction_ref(prediction_id)
        accepted = await _commands(request).dismiss(public_id, provide_caller(request),
                                                    data.reason if data is not None else None)
        headers = await settle(request.app.state, (PREDICTIONS, accepted.position))
        return Response(await _prediction(request, public_id), headers=headers)


def _scope(scope: str) -> str:
    """`global` (also `all`, `*`), or a pattern id (canonicalized); any other label is kept as given (a free string,
    as the contract says) and watches no pattern until one has that id."""
    return canonical("pat", scope) or scope


async def _rule(request: Request[Any, Any, Any], rule_id: str) -> queries.AlertRuleView:
    return await read_one(request, "alert_rule", rule_id, queries.get_rule)


class AlertRulesController(Controller):
    path = "/v1/alert-rules"
    tags = ("Predictions",)

    @post("/", guards=[requires("predictions:write")], status_code=201)
    async def create_alert_rule(self, request: Request[Any, Any, Any], data: JSONBody[schemas.CreateAlertRuleRequest]
                                ) -> Response[queries.AlertRuleView]:
        """A rule fires (a `prediction.alert.fired` notification and an AlertFired event) when a prediction of
        its window, in its scope (`global` or a pattern id), crosses its probability: once per crossing; a
        disabled or snoozed rule stays silent."""
        accepted = await _commands(request).create_rule(
            provide_caller(request), name=data.name, scope=_scope(data.scope),
            threshold=AlertThreshold(probability=data.threshold.probability,
                                     window_days=data.threshold.window_days),
            channels=list(data.channels), enabled=data.enabled, snoozed_until=data.snoozed_until)
        headers = await settle(request.app.state, (PREDICTIONS, accepted.position))
        return Response(await _rule(request, rule_id_of(accepted)), status_code=201, headers=headers)

    @get("/", guards=[requires("predictions:read")])
    async def list_alert_rules(self, request: Request[Any, Any, Any], limit: Limit = 25, cursor: Cursor = None
                               ) -> Page[queries.AlertRuleView]:
        """The workspace's alert rules, oldest first."""
        key = cursor_key(request)
        offset = offset_of(key, cursor, RULES_ORDER)
        caller = provide_caller(request)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            rows, total = await queries.list_rules(conn, caller.workspace_id, limit, offset)
        return offset_page(rows, offset=offset, total=total, key=key, sort=RULES_ORDER)

    @get("/{rule_id:str}", guards=[requires("predictions:read")])
    async def get_alert_rule(self, request: Request[Any, Any, Any], rule_id: FromPath[str]
                             ) -> queries.AlertRuleView:
        """Retrieve one alert rule."""
        return await _rule(request, _rule_ref(rule_id))

    @patch("/{rule_id:str}", guards=[requires("predictions:write")],
           responses=error_responses(e409="conflict: changed concurrently; retry"))
    async def update_alert_rule(self, request: Request[Any, Any, Any], rule_id: FromPath[str],
                                data: JSONBody[schemas.UpdateAlertRuleRequest]) -> Response[queries.AlertRuleView]:
        """Change a rule: name, scope, threshold, channels, enabled, snoozed_until (null to wake it)."""
        public_id = _rule_ref(rule_id)
        threshold = (AlertThreshold(probability=data.threshold.probability, window_days=data.threshold.window_days)
                     if isinstance(data.threshold, schemas.ThresholdInput) else data.threshold)
        scope = _scope(data.scope) if isinstance(data.scope, str) else data.scope
        channels = list(data.channels) if isinstance(data.channels, list) else data.channels
        edit = RuleEdit(name=data.name, scope=scope, threshold=threshold, channels=channels, enabled=data.enabled,
                        snoozed_until=data.snoozed_until)
        accepted = await _commands(request).update_rule(public_id, edit, provide_caller(request))
        headers = await settle(request.app.state, (PREDICTIONS, accepted.position))
        return Response(await _rule(request, public_id), headers=headers)

    @delete("/{rule_id:str}", guards=[requires("predictions:write")], status_code=204)
    async def delete_alert_rule(self, request: Request[Any, Any, Any], rule_id: FromPath[str]) -> Response[None]:
        """Delete a rule (it stops firing)."""
        accepted = await _commands(request).delete_rule(_rule_ref(rule_id), provide_caller(request))
        headers = await settle(request.app.state, (PREDICTIONS, accepted.position))
        return Response(None, status_code=204, headers=headers)


class NotificationsController(Controller):
    path = "/v1/me/notifications/feed"
    tags = ("Notifications",)

    @get("/", guards=[authenticated])
    async def list_notifications(
        self, request: Request[Any, Any, Any], cursor: Cursor = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="Page size (default 20)")] = 20,
        unread: Annotated[bool, QueryParameter(description="true: unread only")] = False,
    ) -> Page[feed_queries.NotificationView]:
        """The signed-in user's notifications, newest first (`issue.created`, `prediction.alert.fired`, …)."""
        caller = provide_caller(request)
        user = _user(request)
        key = cursor_key(request)
        before = int(str(decode_cursor(key, cursor, "-created_at")["v"])) if cursor else None
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            rows, total = await feed_queries.feed(conn, caller.workspace_id, user, unread=unread, limit=limit + 1,
                                                  before=before)
        positions = {id(view): position for position, view in rows}
        return page_of([view for _, view in rows], limit=limit, total=total, key=key, sort="-created_at",
                       position=lambda view: {"v": positions[id(view)]})

    @post("/read-all", guards=[authenticated], status_code=200)
    async def read_all_notifications(self, request: Request[Any, Any, Any],
                                     data: JSONBody[schemas.ReadAllRequest]) -> Response[schemas.ReadAllResult]:
        """Mark every unread notification read, or only those whose type starts with `type` (e.g.
        `prediction.`); the body is `{}` for all: answers how many were marked and how many stay unread."""
        caller = provide_caller(request)
        user = _user(request)
        prefix = data.type
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            before = await feed_queries.unread_count(conn, caller.workspace_id, user, prefix)
        accepted = await _commands(request).read_all(caller, user, prefix)
        headers = await settle(request.app.state, (NOTIFICATIONS, accepted.position))
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            left = await feed_queries.unread_count(conn, caller.workspace_id, user, prefix)
            unread = await feed_queries.unread_count(conn, caller.workspace_id, user)
        return Response(schemas.ReadAllResult(marked=max(0, before - left), unread_count=unread), headers=headers)

    @post("/{notification_id:str}/read", guards=[authenticated], status_code=200)
    async def read_notification(self, request: Request[Any, Any, Any], notification_id: FromPath[str]
                                ) -> Response[schemas.NotificationReadResult]:
        """Mark one notification read."""
        caller = provide_caller(request)
        user = await _own_notification(request, notification_id)
        accepted = await _commands(request).read_notification(caller, user, notification_id)
        headers = await settle(request.app.state, (NOTIFICATIONS, accepted.position))
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            unread = await feed_queries.unread_count(conn, caller.workspace_id, user)
        return Response(schemas.NotificationReadResult(id=notification_id, read=True, unread_count=unread),
                        headers=headers)

    @delete("/{notification_id:str}", guards=[authenticated], status_code=204)
    async def dismiss_notification(self, request: Request[Any, Any, Any], notification_id: FromPath[str]
                                   ) -> Response[None]:
        """Dismiss a notification: it leaves the feed."""
        caller = provide_caller(request)
        user = await _own_notification(request, notification_id)
        accepted = await _commands(request).dismiss_notification(caller, user, notification_id)
        headers = await settle(request.app.state, (NOTIFICATIONS, accepted.position))
        return Response(None, status_code=204, headers=headers)


def _user(request: Request[Any, Any, Any]) -> str:
    principal: Principal = request.user
    return principal.subject


async def _own_notification(request: Request[Any, Any, Any], notification_id: str) -> str:
    caller = provide_caller(request)
    user = _user(request)
    if len(notification_id) > 64:
        raise not_found("notification", notification_id[:64])
    async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
        if not await feed_queries.exists(conn, caller.workspace_id, user, notification_id):
            raise not_found("notification", notification_id)
    return user
