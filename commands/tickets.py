"""Pushing a recommendation to an issue tracker: the ticket is created through the workspace's tracker connector,
then `RecommendationPushed` records it on the recommendation's stream.

The ticket exists at the tracker before the event is stored, and the two cannot share a transaction: a crash (or a
lost answer) between them leaves a ticket the recommendation does not know, and a retry creates another. A push to
a tracker and project the recommendation already has a ticket in creates nothing and answers that ticket.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

from adapters.providers.tickets import CreatedTicket, NewTicket, Step
from commands.caller import Caller
from commands.connectors import ConnectorCommands
from commands.errors import NotFound
from commands.runner import CommandRunner, Context, Decision, Result
from domain.connectors.connector import Connector
from domain.ids import parse, render
from domain.recommendations import recommendation as decide
from domain.recommendations import tickets
from domain.recommendations.events import AnyRecommendationEvent, RecommendationEvent


class TicketCreator(Protocol):
    async def create(self, connector_type: str, config: dict[str, object], credentials: dict[str, str],
                     project: str, ticket: NewTicket) -> CreatedTicket: ...


class TicketCommands:
    def __init__(self, runner: CommandRunner, connectors: ConnectorCommands, trackers: TicketCreator) -> None:
        self._runner = runner
        self._connectors = connectors
        self._trackers = trackers

    async def push(self, caller: Caller, recommendation_id: str, tracker: str, project: str,
                   connector_ids: Sequence[str]) -> tuple[Result, bool]:
        """(the recommendation's result, whether a ticket was created now). `connector_ids` are the workspace's
        connectors of the tracker's type, oldest first (the read model knows them; each is re-read here)."""
        target = tickets.check_target(tracker, project)
        current = await self._recommendation(caller, recommendation_id)
        created: CreatedTicket | None = None
        connector_id = ""
        if tickets.existing_ticket(current.tickets, target, project) is None:
            connector = tickets.choose_connector(await self._live(caller, connector_ids), target, project)
            connector_id = render("con", connector.id)
            created = await self._trackers.create(
                connector.type, dict(connector.config), self._connectors.credentials_of(connector), project,
                _ticket(recommendation_id, current))
        stream_id = current.id

        async def deciding(context: Context) -> Decision:
            history = await context.load(stream_id, RecommendationEvent)
            state = decide.project_recommendation(None, cast(list[AnyRecommendationEvent], history))
            assert state is not None
            if created is None:
                return Decision(stream_id, history)
            return Decision(stream_id, history, decide.record_push(state, target, project, connector_id,
                                                                   created.key, created.url, context.meta))

        result = await self._runner.run(caller, deciding)
        return result, result.version > current.version

    async def _recommendation(self, caller: Caller, recommendation_id: str) -> decide.Recommendation:
        stream_id = parse("rec", recommendation_id)
        history = [] if stream_id is None else await self._runner.load(stream_id, RecommendationEvent)
        current = decide.project_recommendation(None, cast(list[AnyRecommendationEvent], history))
        if current is None or current.workspace_id != caller.workspace_id:
            raise NotFound("recommendation", recommendation_id)
        return current

    async def _live(self, caller: Caller, connector_ids: Sequence[str]) -> list[Connector]:
        found = []
        for connector_id in connector_ids:
            try:
                found.append((await self._connectors.connector(caller, connector_id))[0])
            except NotFound:
                continue  # deleted since the read model listed it
        return found


def _ticket(recommendation_id: str, current: decide.Recommendation) -> NewTicket:
    return NewTicket(title=current.title, overview=current.overview,
                     steps=tuple(Step(title=step.title, description=step.description) for step in current.steps),
                     reference=f"Causeloop recommendation {recommendation_id} for pattern {current.pattern_id}")
