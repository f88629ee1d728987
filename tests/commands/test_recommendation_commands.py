"""Recommendation commands on the in-memory store: the pattern moves with the recommendation in one transaction,
the proof window follows the pre-fix rate, and verification waits for a matching issue the worker has not folded
yet (it reopens instead)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import cast

import pytest

from adapters.event_store import EventStore
from commands.caller import Caller
from commands.group_commit import GroupCommitter
from commands.recommendations import RecommendationCommands, recommendation_of
from commands.runner import CommandRunner, Context, Decision
from domain.events import Actor, ActorKind
from domain.ids import IssueId, PatternId, WorkspaceId, render
from domain.patterns import pattern as pattern_rules
from domain.patterns.events import AnyPatternAggregateEvent, Fingerprint, PatternEvent, PatternStatus
from domain.patterns.pattern import Link
from domain.recommendations.events import RecommendationStatus, VerificationState
from domain.recommendations.knowledge import PatternFacts, match
from tests.builders import T1

WS = WorkspaceId("ws_01KV1PX3NQ3B497SHK7JTNT525")
USER = Caller(workspace_id=WS, actor=Actor(kind=ActorKind.USER, id="usr_01KV1PX3NR96XJRGD48NNHH431"))


class World:
    def __init__(self) -> None:
        self.store = EventStore(None)
        self.committer = GroupCommitter(self.store)
        self.now = T1
        self.runner = CommandRunner(self.store, self.committer, clock=lambda: self.now)
        self.commands = RecommendationCommands(self.runner)
        self.pattern = uuid.uuid4()
        self.pattern_id = PatternId(render("pat", self.pattern))

    def close(self) -> None:
        self.committer.close()

    def link(self, opened_days_ago: float) -> Link:
        return Link(issue_id=IssueId(f"iss_{uuid.uuid4().hex}"), method="fingerprint", similarity=1.0,
                    fingerprint="ab", severity="high", service="checkout",
                    issue_opened_at=self.now - timedelta(days=opened_days_ago))

    async def pattern_with(self, opened_days_ago: list[float]) -> None:
        async def deciding(context: Context) -> Decision:
            first, *rest = [self.link(days) for days in opened_days_ago]
            events = pattern_rules.detect(self.pattern, context.meta, template="Timeout calling <*>", link=first,
                                          fingerprint=Fingerprint(error_signature="TimeoutError", hash="ab"))
            current = pattern_rules.project_pattern(None, cast(list[AnyPatternAggregateEvent], events))
            for link in rest:
                assert current is not None
                more = pattern_rules.link_issue(current, link, context.meta)
                current = pattern_rules.project_pattern(current, cast(list[AnyPatternAggregateEvent], more))
                events += more
            return Decision(self.pattern, [], events)

        await self.runner.run(Caller(workspace_id=WS, actor=USER.actor), deciding)

    async def add_issue(self, opened_days_ago: float) -> None:
        async def deciding(context: Context) -> Decision:
            history = await context.load(self.pattern, PatternEvent)
            current = pattern_rules.project_pattern(None, cast(list[AnyPatternAggregateEvent], history))
            assert current is not None
            return Decision(self.pattern, history, pattern_rules.link_issue(current, self.link(opened_days_ago),
                                                                            context.meta))

        await self.runner.run(USER, deciding)

    def pattern_status(self) -> PatternStatus:
        events = [e for e in self.store.load(self.pattern) if isinstance(e, PatternEvent)]
        current = pattern_rules.project_pattern(None, cast(list[AnyPatternAggregateEvent], events))
        assert current is not None
        return current.status

    async def proposed(self) -> str:
        proposals = match(PatternFacts(error_signature="TimeoutError", template="Timeout calling", issue_count=3,
                                       first_seen_at=self.now, last_seen_at=self.now))
        results = await self.commands.propose(WS, self.pattern_id, proposals)
        again = await self.commands.propose(WS, self.pattern_id, proposals)
        assert [r.position for r in again] == [0] * len(results)  # proposing again appends nothing
        return render("rec", results[0].stream_id)

    def at(self, moment: datetime) -> None:
        self.now = moment


@pytest.fixture
def world() -> Iterator[World]:
    made = World()
    yield made
    made.close()


async def test_implementing_watches_the_pattern_and_a_clean_window_resolves_it(world: World) -> None:
    await world.pattern_with([2, 1, 0])
    recommendation_id = await world.proposed()

    started = await world.commands.set_status(recommendation_id, RecommendationStatus.IN_PROGRESS, USER)
    assert recommendation_of(started).status == RecommendationStatus.IN_PROGRESS
    assert world.pattern_status() == PatternStatus.MITIGATING
    done = recommendation_of(await world.commands.set_status(recommendation_id, RecommendationStatus.IMPLEMENTED,
                                                             USER))
    assert done.verification == VerificationState.WATCHING and done.proof_window_days == 30
    assert world.pattern_status() == PatternStatus.WATCHING

    world.at(T1 + timedelta(days=29))
    early = await world.commands.verify(WS, done.id)
    assert early.position == 0
    world.at(T1 + timedelta(days=30))
    verified = recommendation_of(await world.commands.verify(WS, done.id))
    assert verified.verification == VerificationState.VERIFIED
    assert world.pattern_status() == PatternStatus.RESOLVED


async def test_a_low_pre_fix_rate_lengthens_the_window(world: World) -> None:
    await world.pattern_with([100, 50, 0])  # 3 issues over 100 days: 0.03/day, 95% needs ln(20)/0.03 = 100 days
    recommendation_id = await world.proposed()

    done = recommendation_of(await world.commands.set_status(recommendation_id, RecommendationStatus.IMPLEMENTED,
                                                             USER))
    assert done.proof_window_days == 100
    world.at(T1 + timedelta(days=31))
    assert (await world.commands.verify(WS, done.id)).position == 0


async def test_an_unfolded_matching_issue_blocks_verification_and_reopening_links_it(world: World) -> None:
    await world.pattern_with([2, 1, 0])
    recommendation_id = await world.proposed()
    done = recommendation_of(await world.commands.set_status(recommendation_id, RecommendationStatus.IMPLEMENTED,
                                                             USER))
    world.at(T1 + timedelta(days=10))
    await world.add_issue(opened_days_ago=0)
    assert world.pattern_status() == PatternStatus.ACTIVE  # the pattern's own rule: a recurrence reopens it

    world.at(T1 + timedelta(days=31))
    assert (await world.commands.verify(WS, done.id)).position == 0
    reopened = recommendation_of(await world.commands.reopen(WS, done.id, IssueId("iss_x"),
                                                             T1 + timedelta(days=10)))
    assert reopened.verification == VerificationState.REOPENED
    assert reopened.status == RecommendationStatus.IN_PROGRESS
