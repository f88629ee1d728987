"""Recommendation commands: the worker's proposals, verification and reopening, and people's status changes, step
check-offs and dismissals, run by the one runner. A status change that moves the pattern (in progress →
`mitigating`, implemented → `watching`, verified → `resolved`, reopened → `active`) appends the pattern's event in
the same transaction, decided by the pattern's own rules (commands/patterns.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import cast
from uuid import UUID

from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.errors import NotFound
from commands.patterns import pattern_status_events
from commands.runner import CommandRunner, Context, Decision, Result
from commands.workspace_settings import settings_stream
from domain.events import Actor, ActorKind, DomainEvent
from domain.ids import IssueId, PatternId, WorkspaceId, parse
from domain.patterns.events import IssueLinkedToPattern, PatternStatus
from domain.patterns.grouping import MatchMethod
from domain.recommendations import recommendation as decide
from domain.recommendations.events import (
    AnyRecommendationEvent,
    RecommendationEvent,
    RecommendationStatus,
)
from domain.recommendations.knowledge import PLAYBOOKS, Proposal, rate_per_day
from domain.recommendations.recommender import facts_of
from domain.workspace_settings import settings as settings_rules
from domain.workspace_settings.events import AnySettingsEvent, SettingsEvent

RECOMMENDER_ACTOR = Actor(kind=ActorKind.SYSTEM, id="recommender")
MITIGATING_FROM = frozenset({PatternStatus.EMERGING, PatternStatus.ACTIVE})
REOPEN_FROM = frozenset({PatternStatus.WATCHING, PatternStatus.RESOLVED, PatternStatus.MITIGATING})


def recommendation_stream(workspace_id: str, pattern_id: str, playbook: str) -> UUID:
    """One recommendation per (pattern, playbook): proposing again (a replay, a restart) finds the stream."""
    return keyed_uuid(workspace_id, "recommendation", pattern_id, playbook)


def recommendation_of(result: Result) -> decide.Recommendation:
    state = decide.project_recommendation(None, cast(list[AnyRecommendationEvent], result.own(RecommendationEvent)))
    assert state is not None
    return state


class RecommendationCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    async def propose(self, workspace_id: WorkspaceId, pattern_id: PatternId, proposals: Sequence[Proposal]
                      ) -> list[Result]:
        """The worker's proposals for a pattern, each a stream of its own (idempotent)."""
        caller = Caller(workspace_id=workspace_id, actor=RECOMMENDER_ACTOR)
        results = []
        for proposal in proposals:
            stream_id = recommendation_stream(workspace_id, pattern_id, proposal.playbook.key)

            async def deciding(context: Context, stream_id: UUID = stream_id, proposal: Proposal = proposal
                               ) -> Decision:
                history = await context.load(stream_id, RecommendationEvent)
                if history:
                    return Decision(stream_id, history)
                return Decision(stream_id, history, decide.create(stream_id, pattern_id, proposal, context.meta))

            results.append(await self._runner.run(caller, deciding))
        return results

    async def set_status(self, recommendation_id: str, status: RecommendationStatus, caller: Caller,
                         expected_version: int | None = None) -> Result:
        stream_id = parse("rec", recommendation_id)

        async def deciding(context: Context) -> Decision:
            history, current = await _load(context, stream_id, recommendation_id, caller.workspace_id)
            events: list[DomainEvent] = list(decide.change_status(current, status, context.meta))
            if not events:
                return Decision(current.id, history)
            if status == RecommendationStatus.IN_PROGRESS:
                events += (await pattern_status_events(context, current.pattern_id, PatternStatus.MITIGATING,
                                                       MITIGATING_FROM))[1]
            elif status == RecommendationStatus.IMPLEMENTED:
                events += await _start_verification(context, current, events)
            elif current.status == RecommendationStatus.IN_PROGRESS:
                events += await _unless_another_in_progress(context, current)
            return Decision(current.id, history, events)

        return await self._runner.run(caller, deciding, expected_version=expected_version)

    async def complete_step(self, recommendation_id: str, step_id: str, completed: bool, caller: Caller,
                            expected_version: int | None = None) -> Result:
        stream_id = parse("rec", recommendation_id)

        async def deciding(context: Context) -> Decision:
            history, current = await _load(context, stream_id, recommendation_id, caller.workspace_id)
            return Decision(current.id, history, decide.complete_step(current, step_id, completed, context.meta))

        return await self._runner.run(caller, deciding, expected_version=expected_version)

    async def dismiss(self, recommendation_id: str, reason: str | None, caller: Caller,
                      expected_version: int | None = None) -> Result:
        stream_id = parse("rec", recommendation_id)

        async def deciding(context: Context) -> Decision:
            history, current = await _load(context, stream_id, recommendation_id, caller.workspace_id)
            events: list[DomainEvent] = list(decide.dismiss(current, reason, context.meta))
            if events and current.status == RecommendationStatus.IN_PROGRESS:
                events += await _unless_another_in_progress(context, current)
            return Decision(current.id, history, events)

        return await self._runner.run(caller, deciding, expected_version=expected_version)

    async def verify(self, workspace_id: WorkspaceId, stream_id: UUID) -> Result:
        """The proof window passed clean (at the runner's clock): verified, and the pattern resolved."""
        caller = Caller(workspace_id=workspace_id, actor=RECOMMENDER_ACTOR)

        async def deciding(context: Context) -> Decision:
            history, current = await _load(context, stream_id, str(stream_id), workspace_id)
            events: list[DomainEvent] = list(decide.verify(current, context.meta))
            if not events:
                return Decision(current.id, history)
            pattern_history, resolved = await pattern_status_events(
                context, current.pattern_id, PatternStatus.RESOLVED, frozenset({PatternStatus.WATCHING}))
            if _failed(current, pattern_history):
                return Decision(current.id, history)  # a matching issue the worker has not folded yet: it reopens
            return Decision(current.id, history, [*events, *resolved])

        return await self._runner.run(caller, deciding)

    async def reopen(self, workspace_id: WorkspaceId, stream_id: UUID, issue_id: IssueId, opened_at: datetime
                     ) -> Result:
        """A matching issue after the fix: the recommendation back in progress with the issue linked, the pattern
        `active` (the detector's link already made a watching or resolved pattern active; this keeps it so)."""
        caller = Caller(workspace_id=workspace_id, actor=RECOMMENDER_ACTOR)

        async def deciding(context: Context) -> Decision:
            history, current = await _load(context, stream_id, str(stream_id), workspace_id)
            events: list[DomainEvent] = list(decide.reopen(current, issue_id, opened_at, context.meta))
            if events:
                events += (await pattern_status_events(context, current.pattern_id, PatternStatus.ACTIVE,
                                                       REOPEN_FROM))[1]
            return Decision(current.id, history, events)

        return await self._runner.run(caller, deciding)


def _failed(current: decide.Recommendation, pattern_history: Sequence[DomainEvent]) -> bool:
    """The pattern's own stream holds a matching issue that fails the fix (the same rule the worker applies)."""
    return any(isinstance(event, IssueLinkedToPattern) and event.method != MatchMethod.MERGE.value
               and decide.reopens(current, event.issue_opened_at) for event in pattern_history)


async def _unless_another_in_progress(context: Context, current: decide.Recommendation) -> list[DomainEvent]:
    """Leaving `in_progress` (back to pending, or dismissed): a `mitigating` pattern is `active` again unless another
    of its recommendations is still in progress (a pattern's recommendations are keyed by playbook)."""
    others = [recommendation_stream(current.workspace_id, current.pattern_id, playbook.key) for playbook in PLAYBOOKS]
    loaded = await asyncio.gather(*(context.load(stream, RecommendationEvent) for stream in others
                                    if stream != current.id))
    for history in loaded:
        other = decide.project_recommendation(None, cast(list[AnyRecommendationEvent], history))
        if other is not None and other.status == RecommendationStatus.IN_PROGRESS:
            return []
    return list((await pattern_status_events(context, current.pattern_id, PatternStatus.ACTIVE,
                                             frozenset({PatternStatus.MITIGATING})))[1])


async def _start_verification(context: Context, current: decide.Recommendation, changed: Sequence[DomainEvent]
                              ) -> list[DomainEvent]:
    """Implemented: the pattern moves to `watching` for the proof window computed from its pre-fix rate."""
    implemented = decide.project_recommendation(current, cast(list[AnyRecommendationEvent], changed))
    assert implemented is not None
    pattern_history, pattern_events = await pattern_status_events(
        context, current.pattern_id, PatternStatus.WATCHING,
        frozenset({PatternStatus.EMERGING, PatternStatus.ACTIVE, PatternStatus.MITIGATING, PatternStatus.RESOLVED}))
    facts = facts_of(pattern_history)
    rate = 0.0 if facts is None else rate_per_day(facts)
    settings_id = settings_stream(context.meta.workspace_id)
    settings = settings_rules.project_settings(
        settings_id, cast(list[AnySettingsEvent], await context.load(settings_id, SettingsEvent)))
    window = decide.proof_window(settings.ai.proof_window_days, rate)
    return [*decide.start_verification(implemented, window, rate, context.meta), *pattern_events]


async def _load(context: Context, stream_id: UUID | None, public_id: str, workspace_id: WorkspaceId
                ) -> tuple[list[RecommendationEvent], decide.Recommendation]:
    history = [] if stream_id is None else await context.load(stream_id, RecommendationEvent)
    current = decide.project_recommendation(None, cast(list[AnyRecommendationEvent], history))
    if current is None or current.workspace_id != workspace_id:
        raise NotFound("recommendation", public_id)
    return history, current
