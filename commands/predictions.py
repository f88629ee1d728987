"""Prediction, alert-rule and notification commands: the prediction worker's recomputes and users' feedback,
dismissals, rule edits and notification reads, all run by the one runner."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.errors import NotFound
from commands.runner import CommandRunner, Context, Decision, Result
from domain.events import Actor, ActorKind, DomainEvent, Meta, envelope
from domain.ids import WorkspaceId, parse, render
from domain.predictions import prediction as decide
from domain.predictions.events import (
    AlertRuleEvent,
    AlertThreshold,
    NotificationDismissed,
    NotificationEvent,
    NotificationRead,
    NotificationsReadAll,
    PredictionEvent,
)
from domain.predictions.prediction import AlertRule, Prediction, RuleEdit

PREDICTOR_ACTOR = Actor(kind=ActorKind.SYSTEM, id="prediction-worker")
S = TypeVar("S")
E = TypeVar("E", bound=DomainEvent)


def prediction_stream(workspace_id: str, pattern_id: str, window_days: int, generation: int) -> UUID:
    """One stream per forecast: a pattern's window has a new generation each time the previous one resolves."""
    return keyed_uuid(workspace_id, "prediction", f"{pattern_id}:{window_days}:{generation}")


def inbox_stream(workspace_id: str, user_id: str) -> UUID:
    """A user's notification reads and dismissals (the notifications themselves are projected from events)."""
    return keyed_uuid(workspace_id, "notifications", user_id)


class PredictionCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    async def worker_step(self, workspace_id: WorkspaceId, stream_id: UUID,
                          build: Callable[[Meta, Prediction | None], list[PredictionEvent]]) -> Result:
        """The worker's change to one prediction (generate, update or expire), decided on the stream as loaded."""
        caller = Caller(workspace_id=workspace_id, actor=PREDICTOR_ACTOR)

        async def deciding(context: Context) -> Decision:
            history = await context.load(stream_id, PredictionEvent)
            current = decide.project_prediction(None, history)
            return Decision(stream_id, history, list(build(context.meta, current)))

        return await self._runner.run(caller, deciding)

    async def evaluate_rule(self, workspace_id: WorkspaceId, rule_id: UUID,
                            build: Callable[[Meta, AlertRule], list[AlertRuleEvent]]) -> Result:
        caller = Caller(workspace_id=workspace_id, actor=PREDICTOR_ACTOR)

        async def deciding(context: Context) -> Decision:
            history = await context.load(rule_id, AlertRuleEvent)
            current = decide.project_rule(None, history)
            events: list[DomainEvent] = [] if current is None else list(build(context.meta, current))
            return Decision(rule_id, history, events)

        return await self._runner.run(caller, deciding)

    async def _on_prediction(self, prediction_id: str, caller: Caller,
                             change: Callable[[Prediction, Meta], Sequence[PredictionEvent]]) -> Result:
        stream_id = parse("prd", prediction_id)

        async def deciding(context: Context) -> Decision:
            history = [] if stream_id is None else await context.load(stream_id, PredictionEvent)
            current = decide.project_prediction(None, history)
            if current is None or current.workspace_id != caller.workspace_id:
                raise NotFound("prediction", prediction_id)
            return Decision(current.id, history, list(change(current, context.meta)))

        return await self._runner.run(caller, deciding)

    async def dismiss(self, prediction_id: str, caller: Caller, reason: str | None = None) -> Result:
        return await self._on_prediction(prediction_id, caller,
                                         lambda current, meta: decide.dismiss(current, meta, reason))

    async def feedback(self, prediction_id: str, caller: Caller, outcome: str, comment: str | None) -> Result:
        return await self._on_prediction(prediction_id, caller,
                                         lambda current, meta: decide.feedback(current, meta, outcome, comment))

    async def create_rule(self, caller: Caller, *, name: str, scope: str, threshold: AlertThreshold,
                          channels: list[str], enabled: bool, snoozed_until: datetime | None) -> Result:
        async def deciding(context: Context) -> Decision:
            stream_id = context.new_uuid()
            return Decision(stream_id, [], list(decide.create_rule(stream_id, context.meta, name, scope, threshold,
                                                                   channels, enabled, snoozed_until)))

        return await self._runner.run(caller, deciding)

    async def _on_rule(self, rule_id: str, caller: Caller,
                       change: Callable[[AlertRule, Meta], Sequence[AlertRuleEvent]],
                       expected_version: int | None = None) -> Result:
        stream_id = parse("alr", rule_id)

        async def deciding(context: Context) -> Decision:
            history = [] if stream_id is None else await context.load(stream_id, AlertRuleEvent)
            current = decide.project_rule(None, history)
            if current is None or current.workspace_id != caller.workspace_id or current.deleted:
                raise NotFound("alert_rule", rule_id)
            return Decision(current.id, history, list(change(current, context.meta)))

        return await self._runner.run(caller, deciding, expected_version=expected_version)

    async def update_rule(self, rule_id: str, edit: RuleEdit, caller: Caller) -> Result:
        return await self._on_rule(rule_id, caller, lambda current, meta: decide.update_rule(current, meta, edit))

    async def delete_rule(self, rule_id: str, caller: Caller) -> Result:
        return await self._on_rule(rule_id, caller, lambda current, meta: decide.delete_rule(current, meta))

    async def _inbox(self, caller: Caller, user_id: str,
                     build: Callable[[UUID, Meta, int], NotificationEvent]) -> Result:
        stream_id = inbox_stream(caller.workspace_id, user_id)

        async def deciding(context: Context) -> Decision:
            history = await context.load(stream_id, NotificationEvent)
            version = history[-1].originator_version + 1 if history else 1
            return Decision(stream_id, history, [build(stream_id, context.meta, version)])

        return await self._runner.run(caller, deciding)

    async def read_notification(self, caller: Caller, user_id: str, notification_id: str) -> Result:
        return await self._inbox(caller, user_id, lambda stream, meta, version: NotificationRead(
            **envelope(meta, stream, version), user_id=user_id, notification_id=notification_id))

    async def dismiss_notification(self, caller: Caller, user_id: str, notification_id: str) -> Result:
        return await self._inbox(caller, user_id, lambda stream, meta, version: NotificationDismissed(
            **envelope(meta, stream, version), user_id=user_id, notification_id=notification_id))

    async def read_all(self, caller: Caller, user_id: str, type_prefix: str | None) -> Result:
        return await self._inbox(caller, user_id, lambda stream, meta, version: NotificationsReadAll(
            **envelope(meta, stream, version), user_id=user_id, type_prefix=type_prefix))


def rule_id_of(result: Result) -> str:
    return render("alr", result.stream_id)

