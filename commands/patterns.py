"""Pattern commands: the detector's decisions, and users' edits and merges, run by the one runner."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast
from uuid import UUID

import msgspec

from adapters.ids import keyed_uuid
from commands.caller import Caller
from commands.errors import NotFound
from commands.runner import CommandRunner, Context, Decision, Result
from domain.events import DomainEvent
from domain.ids import IssueId, PatternId, WorkspaceId, parse, render
from domain.issues import issue as issue_rules
from domain.issues.events import AnyIssueEvent, IssueEvent
from domain.patterns import pattern as decide
from domain.patterns.detector import DETECTOR_ACTOR, MODEL, Decide
from domain.patterns.events import (
    AnyPatternAggregateEvent,
    Fingerprint,
    IssueLinkedToPattern,
    PatternEvent,
    PatternStatus,
)
from domain.patterns.grouping import MatchMethod
from domain.patterns.pattern import Link, Pattern, PatternEdit

SIGNATURE_MAX = 200


def pattern_stream(workspace_id: str, key: str) -> UUID:
    """A pattern's stream id from its founding key: the same decision always names the same stream."""
    return keyed_uuid(workspace_id, "pattern", key)


def pattern_id_of(result: Result) -> PatternId:
    return PatternId(render("pat", result.stream_id))


def pattern_events(result: Result) -> list[AnyPatternAggregateEvent]:
    return cast(list[AnyPatternAggregateEvent], result.own(PatternEvent))


class PatternCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner
        self._known: dict[UUID, tuple[Pattern, PatternEvent]] = {}
        """The detector's write-side cache: each pattern it wrote, as of the last event it appended. A big
        pattern's stream is not loaded again for every link; another writer in between (a user's PATCH) makes
        the append conflict, and the retry loads the stream afresh."""

    async def record(self, decisions: Sequence[Decide]) -> Result:
        """The detector's decisions for ONE pattern, in order: found it or join it, and link each issue to it
        (one transaction)."""
        first = decisions[0]
        caller = Caller(workspace_id=first.workspace_id, actor=DETECTOR_ACTOR)
        stream_id = pattern_stream(first.workspace_id, first.pattern_key)
        pattern_id = PatternId(render("pat", stream_id))
        attempts = 0
        pending: tuple[Pattern, PatternEvent] | None = None

        async def deciding(context: Context) -> Decision:
            nonlocal attempts, pending
            attempts += 1
            known = self._known.get(stream_id) if attempts == 1 else None
            history: list[PatternEvent]
            if known is None:
                history = await context.load(stream_id, PatternEvent)
                current = decide.project_pattern(None, cast(list[AnyPatternAggregateEvent], history))
            else:
                current, last = known
                history = [last]
            events: list[DomainEvent] = []
            for decision in decisions:
                if decision.reaffirm:  # the issue stays: only its analysis is recorded again (below)
                    continue
                decided = self._decide_one(context, stream_id, current, decision)
                current = decide.project_pattern(current, cast(list[AnyPatternAggregateEvent], decided))
                events += decided
                if decision.unlinked_from_key is not None:
                    events += await _unlink_from(context, decision.workspace_id, decision.unlinked_from_key,
                                                 decision.issue_id)
            links = await asyncio.gather(*(_issue_link(context, d.issue_id, pattern_id, d)
                                           for d in one_per_issue(decisions)))
            events += [event for found in links for event in found]
            own = [event for event in events if event.originator_id == stream_id]
            if current is not None and (own or history):
                pending = (current, cast(PatternEvent, own[-1] if own else history[-1]))
            return Decision(stream_id, history, events)

        result = await self._runner.run(caller, deciding)
        if pending is not None:
            self._known[stream_id] = pending
        return result

    @staticmethod
    def _decide_one(context: Context, stream_id: UUID, current: Pattern | None, decision: Decide
                    ) -> list[PatternEvent]:
        assignment = decision.assignment
        suggested = (PatternId(render("pat", pattern_stream(decision.workspace_id, decision.suggested_key)))
                     if decision.suggested_key else None)
        link = Link(issue_id=decision.issue_id, method=assignment.method.value, similarity=assignment.similarity,
                    fingerprint=assignment.fingerprint, severity=decision.severity, service=decision.service,
                    issue_opened_at=decision.opened_at, suggested_pattern_id=suggested,
                    suggested_similarity=assignment.suggested_similarity, similar=decision.similar)
        if current is None:
            signature = decision.error_type or assignment.template
            fingerprint = Fingerprint(domain=decision.domain, service=decision.service,
                                      component=decision.component, error_signature=signature[:SIGNATURE_MAX],
                                      hash=assignment.fingerprint)
            return decide.detect(stream_id, context.meta, fingerprint=fingerprint, template=assignment.template,
                                 link=link)
        template = assignment.template if assignment.method == MatchMethod.TEMPLATE else None
        return decide.link_issue(current, link, context.meta, template)

    async def update(self, pattern_id: str, edit: PatternEdit, caller: Caller,
                     expected_version: int | None = None) -> Result:
        stream_id = parse("pat", pattern_id)

        async def deciding(context: Context) -> Decision:
            history, current = await _load(context, stream_id, pattern_id, caller.workspace_id)
            return Decision(current.id, history, decide.update_pattern(current, edit, context.meta))

        return await self._runner.run(caller, deciding, expected_version=expected_version)

    async def merge(self, target_id: str, source_id: str, caller: Caller) -> Result:
        """The source's issues move to the target; the detector reads the PatternMerged event as a must-link."""
        target_stream = parse("pat", target_id)
        source_stream = parse("pat", source_id)

        async def deciding(context: Context) -> Decision:
            history, target = await _load(context, target_stream, target_id, caller.workspace_id)
            source_history, source = await _load(context, source_stream, source_id, caller.workspace_id)
            links = _links_of(source, source_history)
            events: list[DomainEvent] = list(decide.merge(source, target, links, context.meta))
            for link in links:
                events += await _issue_link(context, link.issue_id, PatternId(render("pat", target.id)))
            return Decision(target.id, history, events)

        return await self._runner.run(caller, deciding)


    async def create(self, caller: Caller, *, name: str, status: PatternStatus, fingerprint: dict[str, object],
                     tags: list[str], issue_ids: Sequence[str], risk_score: int, confidence: float) -> Result:
        """A pattern by hand; each named issue is linked to it (the detector moves it into the member list)."""
        def text(field: str) -> str | None:
            value = fingerprint.get(field)
            return value.strip()[:SIGNATURE_MAX] or None if isinstance(value, str) else None

        async def deciding(context: Context) -> Decision:
            key = f"manual/{context.new_uuid()}"
            stream_id = pattern_stream(caller.workspace_id, key)
            found = Fingerprint(domain=text("domain"), service=text("service"), component=text("component"),
                                error_signature=text("error_signature") or name.strip()[:SIGNATURE_MAX], hash="")
            events: list[DomainEvent] = list(decide.create(
                stream_id, key, context.meta, name=name, status=status, fingerprint=found, tags=tags,
                risk_score=risk_score, confidence=confidence))
            pattern_id = PatternId(render("pat", stream_id))
            for issue_id in dict.fromkeys(issue_ids):
                issue_stream = parse("iss", issue_id)
                history = [] if issue_stream is None else await context.load(issue_stream, IssueEvent)
                issue = issue_rules.project_issue(None, cast(list[AnyIssueEvent], history))
                if issue is None or issue.workspace_id != caller.workspace_id:
                    raise NotFound("issue", issue_id)
                events += issue_rules.link_pattern(issue, pattern_id, context.meta)
            return Decision(stream_id, [], events)

        return await self._runner.run(caller, deciding)

    async def reanalyze(self, issue_id: str, tier: str, caller: Caller) -> Result:
        """Ask the detector to group the issue again: the issue is `analyzing` from this commit until the detector
        records its answer (asynchronously, like for a new issue)."""
        issue_stream = parse("iss", issue_id)

        async def deciding(context: Context) -> Decision:
            history = [] if issue_stream is None else await context.load(issue_stream, IssueEvent)
            issue = issue_rules.project_issue(None, cast(list[AnyIssueEvent], history))
            if issue_stream is None or issue is None or issue.workspace_id != caller.workspace_id:
                raise NotFound("issue", issue_id)
            return Decision(issue_stream, history, issue_rules.start_reanalysis(issue, tier, context.meta))

        return await self._runner.run(caller, deciding)


async def _load(context: Context, stream_id: UUID | None, public_id: str, workspace_id: WorkspaceId
                ) -> tuple[list[PatternEvent], Pattern]:
    history = [] if stream_id is None else await context.load(stream_id, PatternEvent)
    current = decide.project_pattern(None, cast(list[AnyPatternAggregateEvent], history))
    if current is None or current.workspace_id != workspace_id:
        raise NotFound("pattern", public_id)
    return history, current


def _links_of(source: Pattern, history: Sequence[PatternEvent]) -> list[Link]:
    """The current members' links, re-stated as merge links (the explanation of how each first matched is kept
    on the source's history)."""
    latest: dict[str, IssueLinkedToPattern] = {}
    for event in history:
        if isinstance(event, IssueLinkedToPattern):
            latest[event.issue_id] = event
    return [Link(issue_id=IssueId(issue_id), method=MatchMethod.MERGE.value, similarity=1.0,
                 fingerprint=latest[issue_id].fingerprint, severity=latest[issue_id].severity,
                 service=latest[issue_id].service, issue_opened_at=latest[issue_id].issue_opened_at)
            for issue_id in sorted(source.members) if issue_id in latest]


def one_per_issue(decisions: Sequence[Decide]) -> list[Decide]:
    """The decisions of one transaction with each member's refreshes folded into the decision before it about the
    same issue (its analysis as of the latest): two appends to one issue stream in one transaction would conflict,
    and a refresh of an issue linked in the same batch must not be taken for one of a member moved away."""
    merged: list[Decide] = []
    index: dict[str, int] = {}
    for decision in decisions:
        at = index.get(decision.issue_id)
        if decision.refresh and at is not None:
            merged[at] = msgspec.structs.replace(
                merged[at], stage=decision.stage, risk_score=decision.risk_score, root_cause=decision.root_cause,
                contributing_factors=decision.contributing_factors)
            continue
        index[decision.issue_id] = len(merged)
        merged.append(decision)
    return merged


async def _unlink_from(context: Context, workspace_id: str, key: str, issue_id: IssueId) -> list[DomainEvent]:
    """The pattern a user unlinked the issue from no longer lists it."""
    history = await context.load(pattern_stream(workspace_id, key), PatternEvent)
    old = decide.project_pattern(None, cast(list[AnyPatternAggregateEvent], history))
    return [] if old is None else list(decide.unlink_issue(old, issue_id, "unlinked", context.meta))


async def _issue_link(context: Context, issue_id: str, pattern_id: PatternId, decision: Decide | None = None
                      ) -> list[DomainEvent]:
    """The issue's own stream records its pattern (and the detector's analysis), so the issue's `pattern_id`,
    `stage`, `risk_score` and `analysis` follow."""
    stream_id = parse("iss", issue_id)
    if stream_id is None:
        return []
    history = await context.load(stream_id, IssueEvent)
    issue = issue_rules.project_issue(None, cast(list[AnyIssueEvent], history))
    if issue is None or (decision is not None and decision.refresh and issue.pattern_id != pattern_id):
        return []  # a refresh of a member someone moved meanwhile: it is no longer this pattern's to analyze
    events = issue_rules.link_pattern(issue, pattern_id, context.meta)
    if decision is None:
        return list(events)
    issue = issue_rules.project_issue(issue, cast(list[AnyIssueEvent], events)) or issue
    events += issue_rules.record_analysis(
        issue, context.meta, stage=decision.stage, risk_score=decision.risk_score, root_cause=decision.root_cause,
        contributing_factors=decision.contributing_factors, confidence=decision.assignment.similarity, model=MODEL)
    return list(events)


async def pattern_status_events(context: Context, pattern_id: str, status: PatternStatus,
                                only_from: frozenset[PatternStatus] | None = None
                                ) -> tuple[list[PatternEvent], list[PatternEvent]]:
    """The pattern's history and the events that set its status (none when it already has it, is merged, or is
    not in `only_from`): other commands (recommendations, verification) move a pattern through here, in their own
    transaction, so the pattern's rules and read model follow."""
    stream_id = parse("pat", pattern_id)
    history = [] if stream_id is None else await context.load(stream_id, PatternEvent)
    current = decide.project_pattern(None, cast(list[AnyPatternAggregateEvent], history))
    if current is None or current.merged_into is not None:
        return history, []
    if only_from is not None and current.status not in only_from:
        return history, []
    return history, decide.update_pattern(current, PatternEdit(status=status), context.meta)
