"""The detector's working state, folded from the event history: one grouper and one similar-issue index per
workspace, which pattern each issue is in, and the human feedback (merges, unlinks) the grouper must remember.

`observe(position, event)` is the whole core loop: it folds one event and returns what should be decided because
of it (an issue to assign). The worker appends those decisions through the command runner when live, and drops
them while it rebuilds its state from events it has already decided on: the state is a pure function of the
event history, so a replay over the same events gives the same patterns.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import msgspec

from domain.events import Actor, ActorKind
from domain.ids import IssueId, WorkspaceId, render
from domain.issues.events import (
    IssueAnalyzed,
    IssueDetailsEdited,
    IssueOpened,
    IssuePatternLinked,
    IssuePatternUnlinked,
    IssueReanalysisStarted,
    Stage,
)
from domain.patterns.analysis import Members
from domain.patterns.events import IssueReanalysisRequested, PatternDetected, PatternMerged
from domain.patterns.grouping import Assignment, Grouper, MatchMethod, Policy, Signal
from domain.patterns.similar import SimilarIndex, terms
from domain.workspace_settings.events import AiSettingsUpdated
from domain.workspace_settings.settings import AiSettings

SIMILAR_KEPT = 5
RECURRENCE_WINDOW_DAYS = 30
"""The workspace setting's default; AiSettingsUpdated changes it."""
DEFAULT_POLICY = Policy(auto_link=AiSettings().auto_link, min_similarity=AiSettings().confidence_threshold)
"""Until a workspace changes `auto_link` or `confidence_threshold`: the threshold (0.80) is the grouper's own
auto-attach threshold, so default settings group exactly as the grouper alone."""
MODEL = "causeloop-grouping-v1"
DETECTOR_ACTOR = Actor(kind=ActorKind.SYSTEM, id="pattern-detector")
_LINE_NUMBER = re.compile(r":\d+$|\(.*?\)$|\s+line\s+\d+.*$")


class Decide(msgspec.Struct, frozen=True, kw_only=True):
    """An issue to link: where the grouping put it and the explanation to store with the link."""

    workspace_id: WorkspaceId
    issue_id: IssueId
    assignment: Assignment
    pattern_key: str
    """The founding issue id of the target pattern: pattern stream ids are derived from it."""
    suggested_key: str | None
    severity: str
    service: str | None
    component: str | None
    domain: str | None
    error_type: str | None
    opened_at: datetime
    similar: list[tuple[IssueId, float]]
    unlinked_from_key: str | None = None
    """A user unlinked the issue from this pattern: its membership there ends with this decision."""
    reaffirm: bool = False
    """A reanalysis that kept the issue where it is: only its analysis is recorded again (no new link)."""
    refresh: bool = False
    """(With `reaffirm`.) A member's analysis that a later issue of its pattern made stale (domain/patterns/
    analysis.py): recorded with that issue's link, and only while the member is still in the pattern."""
    stage: Stage = Stage.PATTERN_FOUND
    """`in_loop` when another issue of the pattern was first seen within the workspace's recurrence window."""
    risk_score: int = 0
    root_cause: str | None = None
    contributing_factors: list[str] = msgspec.field(default_factory=list)


class _Issue:
    __slots__ = ("assignment", "fingerprint", "generation", "opened", "pattern_key")

    def __init__(self, opened: IssueOpened) -> None:
        self.opened = opened
        self.pattern_key: str | None = None
        self.fingerprint: str | None = None
        self.assignment: Assignment | None = None
        """How it was last grouped: the explanation its refreshed analysis repeats."""
        self.generation = 0
        """How many times the issue was grouped: a pattern it founds again gets a key of its own."""


class _Workspace:
    __slots__ = ("grouper", "index", "issues", "key_of_pattern", "policy", "seen", "window")

    def __init__(self) -> None:
        self.grouper = Grouper()
        self.index = SimilarIndex()
        self.issues: dict[str, _Issue] = {}
        self.key_of_pattern: dict[str, str] = {}
        self.seen: dict[str, Members] = {}
        """Per pattern key: its members as stage and risk read them (domain/patterns/analysis.py)."""
        self.window = timedelta(days=RECURRENCE_WINDOW_DAYS)
        self.policy = DEFAULT_POLICY

    def configure(self, event: AiSettingsUpdated) -> None:
        """The settings as of this event: each applies to the issues grouped after it (none is moved)."""
        if event.recurrence_window_days is not msgspec.UNSET:
            self.window = timedelta(days=event.recurrence_window_days)
        if event.auto_link is not msgspec.UNSET:
            self.policy = msgspec.structs.replace(self.policy, auto_link=event.auto_link)
        if event.confidence_threshold is not msgspec.UNSET:
            self.policy = msgspec.structs.replace(self.policy, min_similarity=event.confidence_threshold)


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _frames(value: object) -> tuple[str, ...]:
    """Top in-app frames as `module:function`, line numbers dropped (they move with every edit)."""
    if not isinstance(value, list):
        return ()
    return tuple(_LINE_NUMBER.sub("", str(frame)).strip() for frame in value[:3])


def signal_of(issue_id: str, opened: IssueOpened) -> Signal:
    """What grouping reads from an issue: the title, and the source-specific keys from its metadata."""
    meta = opened.metadata
    client = meta.get("fingerprint")
    if isinstance(client, list):
        client = "\x1f".join(str(part) for part in client)
    return Signal(key=issue_id, text=opened.title, service=_text(meta.get("service")),
                  component=_text(meta.get("component")), error_type=_text(meta.get("error_type")),
                  frames=_frames(meta.get("stack_frames", meta.get("frames"))),
                  client_fingerprint=_text(client))


class Detector:
    def __init__(self, *, similar: bool = True) -> None:
        self._workspaces: dict[str, _Workspace] = {}
        self.awaiting: set[tuple[str, str]] = set()
        """(workspace, issue) whose reanalysis has started and whose answer (an `IssueAnalyzed`) is not recorded yet:
        after a replay, the reaffirming decisions still to append are theirs."""
        self._similar = similar
        """Also find each new issue's most similar earlier issues (off: grouping alone, for the benchmark)."""

    def _workspace(self, workspace_id: str) -> _Workspace:
        found = self._workspaces.get(workspace_id)
        if found is None:
            found = self._workspaces[workspace_id] = _Workspace()
        return found

    def pattern_of(self, workspace_id: str, issue_id: str) -> str | None:
        """The founding issue id of the issue's pattern (following merges), or None."""
        space = self._workspaces.get(workspace_id)
        issue = space.issues.get(issue_id) if space else None
        if space is None or issue is None or issue.pattern_key is None:
            return None
        return space.grouper.resolve(issue.pattern_key)

    def observe(self, event: object) -> list[Decide]:
        match event:
            case IssueOpened():
                return self._opened(event)
            case IssueDetailsEdited():
                return self._edited(event)
            case IssuePatternLinked():
                return self._linked(event)
            case IssuePatternUnlinked():
                return self._unlinked(event)
            case PatternDetected():
                space = self._workspace(event.workspace_id)
                key = event.grouping_key or event.founding_issue_id
                if key is not None:
                    space.key_of_pattern[render("pat", event.originator_id)] = key
            case AiSettingsUpdated():
                self._workspace(event.workspace_id).configure(event)
            case IssueReanalysisRequested():
                return self.reanalyze(event.workspace_id, event.issue_id)
            case IssueReanalysisStarted():
                issue_id = render("iss", event.originator_id)
                self.awaiting.add((event.workspace_id, issue_id))
                return self.reanalyze(event.workspace_id, issue_id, reaffirm=True)
            case IssueAnalyzed():
                issue_id = render("iss", event.originator_id)
                self.awaiting.discard((event.workspace_id, issue_id))
                self._recorded(event.workspace_id, issue_id, event.stage, event.risk_score)
            case PatternMerged():
                space = self._workspace(event.workspace_id)
                source = space.key_of_pattern.get(render("pat", event.originator_id))
                target = space.key_of_pattern.get(event.into_pattern_id)
                if source is not None and target is not None:
                    space.grouper.merge(source, target)
                    moved = space.seen.pop(source, None)
                    if moved is not None:
                        space.seen.setdefault(target, Members()).absorb(moved)
        return []

    def reanalyze(self, workspace_id: str, issue_id: str, *, reaffirm: bool = False) -> list[Decide]:
        """Group one issue again with what the detector knows now (an explicit re-run: the only time an issue
        may move). When the answer is the pattern it is in: no decision, or with `reaffirm` one that records the
        analysis again (the issue shows `analyzing` until then)."""
        space = self._workspace(workspace_id)
        issue = space.issues.get(issue_id)
        if issue is None:
            return []
        current = None if issue.pattern_key is None else space.grouper.resolve(issue.pattern_key)
        decision = self._assign(space, issue_id, issue, keep=current)
        if current is not None and space.grouper.resolve(decision.pattern_key) == current:
            issue.pattern_key = current
            return [msgspec.structs.replace(decision, pattern_key=current, reaffirm=True)] if reaffirm else []
        return self._with_refreshes(space, msgspec.structs.replace(decision, unlinked_from_key=current))

    def _opened(self, event: IssueOpened) -> list[Decide]:
        space = self._workspace(event.workspace_id)
        issue_id = render("iss", event.originator_id)
        issue = _Issue(event)
        space.issues[issue_id] = issue
        decision = self._assign(space, issue_id, issue)
        if self._similar:
            space.index.add(issue_id, terms(event.title, event.body or ""))
        return self._with_refreshes(space, decision)

    def _assign(self, space: _Workspace, issue_id: str, issue: _Issue, keep: str | None = None) -> Decide:
        """`keep`: the pattern a reanalysed issue is in. With `auto_link` off, a match the grouper holds back
        leaves it there: moving it would be the automatic link the workspace turned off."""
        opened = issue.opened
        key = issue_id if issue.generation == 0 else f"{issue_id}/{issue.generation}"
        issue.generation += 1
        assignment = space.grouper.assign(signal_of(key, opened), space.policy)
        if assignment.held and keep is not None:
            assignment = msgspec.structs.replace(assignment, pattern_key=keep, created=False)
        issue.pattern_key = assignment.pattern_key
        issue.fingerprint = assignment.fingerprint
        issue.assignment = assignment
        similar = [(IssueId(match.key), match.similarity) for match in
                   space.index.search(terms(opened.title, opened.body or ""), limit=SIMILAR_KEPT + 1,
                                      exclude=issue_id)][:SIMILAR_KEPT] if self._similar else []
        return _analyzed(space, _decision_for(issue_id, issue, assignment, assignment.pattern_key, similar))

    def _with_refreshes(self, space: _Workspace, decision: Decide) -> list[Decide]:
        """The decision, then the refreshed analyses of the pattern's members it made stale."""
        key = space.grouper.resolve(decision.pattern_key)
        members = space.seen.get(key)
        if members is None:
            return [decision]
        found = [decision]

        def severity_of(member_id: str) -> str:
            issue = space.issues.get(member_id)
            return "medium" if issue is None else issue.opened.severity.value

        for member_id in members.to_check(decision.issue_id, decision.opened_at, space.window, severity_of):
            issue = space.issues.get(member_id)
            if (issue is None or issue.assignment is None or issue.pattern_key is None
                    or space.grouper.resolve(issue.pattern_key) != key):
                members.lonely.pop(member_id, None)  # moved elsewhere: never refreshed here
                continue
            analyzed = _explained(members, _decision_for(member_id, issue, issue.assignment, key),
                                  members.recurs(members.first_seen[member_id], space.window))
            members.record(member_id, analyzed.stage, analyzed.risk_score)
            found.append(msgspec.structs.replace(analyzed, reaffirm=True, refresh=True))
        return found

    def _recorded(self, workspace_id: str, issue_id: str, stage: Stage, risk: int) -> None:
        space = self._workspace(workspace_id)
        issue = space.issues.get(issue_id)
        if issue is not None and issue.pattern_key is not None:
            members = space.seen.get(space.grouper.resolve(issue.pattern_key))
            if members is not None:
                members.record(issue_id, stage, risk)

    def _edited(self, event: IssueDetailsEdited) -> list[Decide]:
        """A changed issue keeps its pattern (never moved silently); one without a pattern is assigned again."""
        space = self._workspace(event.workspace_id)
        issue_id = render("iss", event.originator_id)
        issue = space.issues.get(issue_id)
        if issue is None:
            return []
        changes: dict[str, object] = {}
        if event.title is not msgspec.UNSET:
            changes["title"] = event.title
        if event.metadata is not msgspec.UNSET:
            changes["metadata"] = event.metadata
        if event.severity is not msgspec.UNSET:
            changes["severity"] = event.severity
        if changes:
            issue.opened = msgspec.structs.replace(issue.opened, **changes)
        if issue.pattern_key is None and ("title" in changes or "metadata" in changes):
            return self._with_refreshes(space, self._assign(space, issue_id, issue))
        return []

    def _linked(self, event: IssuePatternLinked) -> list[Decide]:
        """The detector's own link confirms what it decided; a user's link (`link-pattern`, bulk) moves the
        issue, and the patterns' member lists follow (`match_method: manual`)."""
        space = self._workspace(event.workspace_id)
        issue_id = render("iss", event.originator_id)
        issue = space.issues.get(issue_id)
        key = space.key_of_pattern.get(event.pattern_id)
        if issue is None or key is None:
            return []
        current = None if issue.pattern_key is None else space.grouper.resolve(issue.pattern_key)
        issue.pattern_key = key
        if event.actor == DETECTOR_ACTOR or current == space.grouper.resolve(key):
            return []
        assignment = Assignment(pattern_key=key, method=MatchMethod.MANUAL, similarity=1.0,
                                fingerprint=issue.fingerprint or "", template=issue.opened.title, created=False)
        issue.assignment = assignment
        decision = _decision_for(issue_id, issue, assignment, space.grouper.resolve(key))
        return self._with_refreshes(space, _analyzed(space, msgspec.structs.replace(
            decision, unlinked_from_key=current)))

    def _unlinked(self, event: IssuePatternUnlinked) -> list[Decide]:
        """A user's unlink is a cannot-link: that issue's fingerprint never joins that pattern again, and the
        issue is grouped anew (its own pattern, or another that it matches)."""
        space = self._workspace(event.workspace_id)
        issue_id = render("iss", event.originator_id)
        issue = space.issues.get(issue_id)
        key = space.key_of_pattern.get(event.pattern_id)
        if issue is None or key is None:
            return []
        if issue.pattern_key is not None and space.grouper.resolve(issue.pattern_key) != space.grouper.resolve(key):
            return []  # moved by a merge: not a user's unlink from its current pattern
        if event.actor == DETECTOR_ACTOR:
            return []
        if issue.fingerprint is not None:
            space.grouper.forbid(issue.fingerprint, key)
        issue.pattern_key = None
        decision = self._assign(space, issue_id, issue)
        return self._with_refreshes(space, msgspec.structs.replace(decision,
                                                                   unlinked_from_key=space.grouper.resolve(key)))


def _decision_for(issue_id: str, issue: _Issue, assignment: Assignment, pattern_key: str,
                  similar: list[tuple[IssueId, float]] | None = None) -> Decide:
    """A decision about `issue` as it reads now (its latest title, severity and metadata)."""
    opened = issue.opened
    meta = opened.metadata
    return Decide(workspace_id=opened.workspace_id, issue_id=IssueId(issue_id), assignment=assignment,
                  pattern_key=pattern_key, suggested_key=assignment.suggested_pattern_key,
                  severity=opened.severity.value, service=_text(meta.get("service")),
                  component=_text(meta.get("component")), domain=_text(meta.get("domain")),
                  error_type=_text(meta.get("error_type")), opened_at=opened.source_created_at or opened.occurred_at,
                  similar=similar or [])


def _analyzed(space: _Workspace, decision: Decide) -> Decide:
    """Stage, risk and explanation of a linked issue, from what its pattern holds so far (the issue counted in)."""
    members = space.seen.setdefault(space.grouper.resolve(decision.pattern_key), Members())
    members.add(decision.issue_id, decision.opened_at, decision.service)
    analyzed = _explained(members, decision, members.recurs(decision.opened_at, space.window))
    members.record(decision.issue_id, analyzed.stage, analyzed.risk_score)
    return analyzed


def _explained(members: Members, decision: Decide, recurred: bool) -> Decide:
    """`in_loop` when another issue of the pattern was first seen within the recurrence window of this one. Risk
    (0–100) as the pattern's formula (docs/patterns.md) now: recency 1, the issue's own severity, the pattern's
    issue count and services."""
    count = len(members.times)
    assignment = decision.assignment
    factors = [f"{name}: {value}" for name, value in (("service", decision.service),
                                                      ("component", decision.component),
                                                      ("error type", decision.error_type)) if value]
    factors.append(f"grouped by {assignment.method.value} (similarity {assignment.similarity:.2f})")
    factors.append(f"{count} issue{'s' if count > 1 else ''} in the pattern")
    root_cause = f"{'Recurring' if count > 1 else 'New'} failure pattern: {assignment.template}"
    return msgspec.structs.replace(decision, stage=Stage.IN_LOOP if recurred else Stage.PATTERN_FOUND,
                                   risk_score=members.risk(decision.severity), root_cause=root_cause[:500],
                                   contributing_factors=factors)
