"""The Recommendation aggregate: its state, the fold over its events, the status transitions and verification.

Transitions (the contract's `pending → in_progress → implemented | dismissed`): pending → in_progress, implemented
or dismissed; in_progress → pending, implemented or dismissed; implemented and dismissed are final for a person
(setting the current status again records nothing). Verification moves an implemented recommendation: `watching`
→ `verified` when the proof window passes clean, or → `reopened` (status back to `in_progress`) when a matching
issue arrives after the fix.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import assert_never
from uuid import UUID

import msgspec

from domain.errors import InvalidTransition, InvalidValue
from domain.events import Meta, envelope
from domain.ids import IssueId, PatternId, WorkspaceId
from domain.recommendations.events import (
    AnyRecommendationEvent,
    RecommendationCreated,
    RecommendationDismissed,
    RecommendationEvent,
    RecommendationPushed,
    RecommendationReopened,
    RecommendationStatus,
    RecommendationStatusChanged,
    RecommendationStepCompleted,
    RecommendationVerificationStarted,
    RecommendationVerified,
    Step,
    VerificationState,
)
from domain.recommendations.knowledge import Proposal
from domain.recommendations.tickets import Ticket, Tracker, existing_ticket

ALPHA = 0.05
"""The chance the old rate would have produced no issue in the window: W = ln(1/α) / λ₀ ≈ 3 / λ₀."""
PROOF_WINDOW_MAX_DAYS = 365
REASON_MAX = 1000

Status = RecommendationStatus
ALLOWED: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.IN_PROGRESS, Status.IMPLEMENTED, Status.DISMISSED}),
    Status.IN_PROGRESS: frozenset({Status.PENDING, Status.IMPLEMENTED, Status.DISMISSED}),
    Status.IMPLEMENTED: frozenset(),
    Status.DISMISSED: frozenset(),
}


class Recommendation(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    workspace_id: WorkspaceId
    version: int
    pattern_id: PatternId
    status: Status
    steps: tuple[Step, ...]
    completed_steps: frozenset[str]
    verification: VerificationState = VerificationState.NONE
    watching_since: datetime | None = None
    proof_window_days: int | None = None
    title: str = ""
    overview: str = ""
    tickets: tuple[Ticket, ...] = ()
    """Every ticket pushed for it, oldest first (one per tracker and project)."""

    @property
    def window_ends_at(self) -> datetime | None:
        if self.watching_since is None or self.proof_window_days is None:
            return None
        return self.watching_since + timedelta(days=self.proof_window_days)


class ProofWindow(msgspec.Struct, frozen=True, kw_only=True):
    days: int
    explanation: str


def proof_window(setting_days: int, rate_per_day: float) -> ProofWindow:
    """The workspace's window, or the smallest window in which the pre-fix rate λ₀ would have produced an issue
    with probability 1 − α (W = ln(1/α) / λ₀) when that is longer, capped at 365 days."""
    if rate_per_day <= 0:
        return ProofWindow(days=setting_days, explanation=(
            f"Watching for the workspace's proof window of {setting_days} days (no pre-fix rate was observed)."))
    needed = math.ceil(math.log(1 / ALPHA) / rate_per_day)
    rate = f"{rate_per_day:.3g} issues/day"
    if needed <= setting_days:
        return ProofWindow(days=setting_days, explanation=(
            f"Watching for the workspace's proof window of {setting_days} days: at the pre-fix rate of {rate} the "
            f"pattern would recur within {needed} day(s) with 95% probability."))
    if needed <= PROOF_WINDOW_MAX_DAYS:
        return ProofWindow(days=needed, explanation=(
            f"Watching for {needed} days, longer than the workspace's proof window of {setting_days} days: at the "
            f"pre-fix rate of {rate} a clean {setting_days}-day window would not show the fix held (95% needs "
            f"{needed} days)."))
    return ProofWindow(days=PROOF_WINDOW_MAX_DAYS, explanation=(
        f"Watching for the maximum of {PROOF_WINDOW_MAX_DAYS} days: at the pre-fix rate of {rate} proving the fix "
        f"with 95% confidence needs {needed} days, so a clean window is weak evidence and the fix cannot be "
        f"verified with confidence within it."))


def evolve(state: Recommendation | None, event: AnyRecommendationEvent) -> Recommendation:
    if isinstance(event, RecommendationCreated):
        return Recommendation(id=event.originator_id, workspace_id=event.workspace_id,
                              version=event.originator_version, pattern_id=event.pattern_id,
                              status=Status.PENDING, steps=tuple(event.steps), completed_steps=frozenset(),
                              title=event.title, overview=event.overview)
    assert state is not None, "a recommendation stream starts with RecommendationCreated"
    state = msgspec.structs.replace(state, version=event.originator_version)
    match event:
        case RecommendationStatusChanged():
            return msgspec.structs.replace(state, status=event.to_status)
        case RecommendationStepCompleted():
            done = state.completed_steps | {event.step_id} if event.completed else state.completed_steps - {
                event.step_id}
            return msgspec.structs.replace(state, completed_steps=done)
        case RecommendationDismissed():
            return msgspec.structs.replace(state, status=Status.DISMISSED)
        case RecommendationVerificationStarted():
            return msgspec.structs.replace(state, verification=VerificationState.WATCHING,
                                           watching_since=event.watching_since,
                                           proof_window_days=event.proof_window_days)
        case RecommendationVerified():
            return msgspec.structs.replace(state, verification=VerificationState.VERIFIED)
        case RecommendationReopened():
            return msgspec.structs.replace(state, verification=VerificationState.REOPENED,
                                           status=Status.IN_PROGRESS)
        case RecommendationPushed():
            ticket = Ticket(tracker=event.tracker, project=event.project, connector_id=event.connector_id,
                            key=event.ticket_key, url=event.ticket_url, pushed_at=event.occurred_at)
            return msgspec.structs.replace(state, tickets=(*state.tickets, ticket))
        case _:
            assert_never(event)


def project_recommendation(state: Recommendation | None, events: Iterable[AnyRecommendationEvent]
                           ) -> Recommendation | None:
    return functools.reduce(evolve, events, state)


def create(stream_id: UUID, pattern_id: PatternId, proposal: Proposal, meta: Meta) -> list[RecommendationEvent]:
    playbook = proposal.playbook
    steps = [Step(id=f"s{index}", title=step.title, description=step.description)
             for index, step in enumerate(playbook.steps, start=1)]
    return [RecommendationCreated(
        **envelope(meta, stream_id, 1), pattern_id=pattern_id, playbook=playbook.key, title=playbook.title,
        fix_type=playbook.type.value, impact=playbook.impact.value, effort=playbook.effort.value,
        overview=playbook.overview, steps=steps, rank=proposal.rank,
        expected_loops_prevented=proposal.expected_loops_prevented)]


def change_status(state: Recommendation, to: Status, meta: Meta) -> list[RecommendationEvent]:
    """A person's transition; `implemented` is followed by verification_started (see `start_verification`)."""
    if to == state.status:
        return []
    if to not in ALLOWED[state.status]:
        raise InvalidTransition(f"a recommendation cannot go from {state.status.value} to {to.value}",
                                status=state.status.value)
    return [RecommendationStatusChanged(**envelope(meta, state.id, state.version + 1), from_status=state.status,
                                        to_status=to)]


def start_verification(state: Recommendation, window: ProofWindow, rate_per_day: float, meta: Meta
                       ) -> list[RecommendationEvent]:
    if state.status != Status.IMPLEMENTED:
        raise InvalidTransition("only an implemented recommendation is verified")
    return [RecommendationVerificationStarted(
        **envelope(meta, state.id, state.version + 1), pattern_id=state.pattern_id, proof_window_days=window.days,
        watching_since=meta.now, pre_fix_rate_per_day=round(rate_per_day, 6), explanation=window.explanation)]


def complete_step(state: Recommendation, step_id: str, completed: bool, meta: Meta) -> list[RecommendationEvent]:
    if step_id not in {step.id for step in state.steps}:
        raise InvalidValue("step_id", "no such step")
    if (step_id in state.completed_steps) == completed:
        return []
    return [RecommendationStepCompleted(**envelope(meta, state.id, state.version + 1), step_id=step_id,
                                        completed=completed)]


def dismiss(state: Recommendation, reason: str | None, meta: Meta) -> list[RecommendationEvent]:
    if state.status == Status.DISMISSED:
        return []
    if Status.DISMISSED not in ALLOWED[state.status]:
        raise InvalidTransition(f"a recommendation cannot be dismissed when {state.status.value}",
                                status=state.status.value)
    reason = reason.strip() if reason else None
    if reason is not None and len(reason) > REASON_MAX:
        raise InvalidValue("reason", f"at most {REASON_MAX} characters")
    return [RecommendationDismissed(**envelope(meta, state.id, state.version + 1), reason=reason or None)]


def due(state: Recommendation, now: datetime) -> bool:
    """The proof window has passed while watching."""
    ends = state.window_ends_at
    return state.verification == VerificationState.WATCHING and ends is not None and now >= ends


def verify(state: Recommendation, meta: Meta) -> list[RecommendationEvent]:
    """The window passed with no matching issue (the caller checked `due` at `meta.now`)."""
    if not due(state, meta.now):
        return []
    return [RecommendationVerified(**envelope(meta, state.id, state.version + 1), pattern_id=state.pattern_id)]


def reopens(state: Recommendation, opened_at: datetime) -> bool:
    """A matching issue opened at `opened_at` fails the fix when it opened after the fix was marked implemented
    (while watching or once verified); one opened before is a straggler (ingested late, or merged in) and does
    not."""
    return (state.verification in (VerificationState.WATCHING, VerificationState.VERIFIED)
            and state.watching_since is not None and opened_at > state.watching_since)


def reopen(state: Recommendation, issue_id: IssueId, opened_at: datetime, meta: Meta) -> list[RecommendationEvent]:
    """A matching issue linked after the fix (while watching or once verified) reopens the recommendation; earlier
    stragglers do not."""
    if not reopens(state, opened_at):
        return []
    return [RecommendationReopened(**envelope(meta, state.id, state.version + 1), pattern_id=state.pattern_id,
                                   issue_id=issue_id)]


def record_push(state: Recommendation, tracker: Tracker, project: str, connector_id: str, key: str, url: str,
                meta: Meta) -> list[RecommendationEvent]:
    """The ticket the tracker created; none when a push to the same tracker and project got there first (its
    ticket stands, and this one is not recorded)."""
    if existing_ticket(state.tickets, tracker, project) is not None:
        return []
    return [RecommendationPushed(**envelope(meta, state.id, state.version + 1), tracker=tracker.value,
                                 project=project, connector_id=connector_id, ticket_key=key, ticket_url=url)]
