"""The Pattern aggregate: its state, the fold over its events, and the decisions that produce new ones."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import assert_never, cast
from uuid import UUID

import msgspec

from domain.errors import InvalidTransition, InvalidValue
from domain.events import Meta, envelope
from domain.ids import IssueId, PatternId, WorkspaceId, render
from domain.patterns.events import (
    AnyPatternAggregateEvent,
    Fingerprint,
    IssueLinkedToPattern,
    IssueUnlinkedFromPattern,
    PatternDetected,
    PatternEvent,
    PatternMerged,
    PatternStatus,
    PatternUpdated,
)

NAME_MAX = 200
TAGS_MAX = 20


class Pattern(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    workspace_id: WorkspaceId
    version: int
    name: str
    status: PatternStatus
    tags: tuple[str, ...]
    members: frozenset[IssueId]
    template: str = ""
    merged_into: PatternId | None = None


class Link(msgspec.Struct, frozen=True, kw_only=True):
    """One issue joining a pattern, with the explanation the link stores."""

    issue_id: IssueId
    method: str
    similarity: float
    fingerprint: str
    severity: str
    service: str | None
    issue_opened_at: datetime
    suggested_pattern_id: PatternId | None = None
    suggested_similarity: float | None = None
    similar: list[tuple[IssueId, float]] = msgspec.field(default_factory=list)


class PatternEdit(msgspec.Struct, frozen=True, kw_only=True):
    name: str | msgspec.UnsetType = msgspec.UNSET
    status: PatternStatus | msgspec.UnsetType = msgspec.UNSET
    tags: list[str] | msgspec.UnsetType = msgspec.UNSET


def evolve(pattern: Pattern | None, event: AnyPatternAggregateEvent) -> Pattern:
    if isinstance(event, PatternDetected):
        return Pattern(id=event.originator_id, workspace_id=event.workspace_id, version=event.originator_version,
                       name=event.name, status=PatternStatus.EMERGING, tags=(), members=frozenset(),
                       template=event.template)
    assert pattern is not None, "a pattern stream starts with PatternDetected"
    pattern = msgspec.structs.replace(pattern, version=event.originator_version)
    match event:
        case IssueLinkedToPattern():
            return msgspec.structs.replace(pattern, members=pattern.members | {event.issue_id})
        case IssueUnlinkedFromPattern():
            return msgspec.structs.replace(pattern, members=pattern.members - {event.issue_id})
        case PatternUpdated():
            return msgspec.structs.replace(
                pattern,
                name=pattern.name if event.name is msgspec.UNSET else event.name,
                status=pattern.status if event.status is msgspec.UNSET else event.status,
                tags=pattern.tags if event.tags is msgspec.UNSET else tuple(event.tags),
                template=pattern.template if event.template is msgspec.UNSET else event.template)
        case PatternMerged():
            return msgspec.structs.replace(pattern, merged_into=event.into_pattern_id)
        case _:
            assert_never(event)


def project_pattern(pattern: Pattern | None, events: Iterable[AnyPatternAggregateEvent]) -> Pattern | None:
    return functools.reduce(evolve, events, pattern)


def pattern_name(template: str) -> str:
    """A readable default name: the template, shortened to the name limit."""
    name = " ".join(template.split()) or "pattern"
    return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1] + "…"


def detect(pattern_id: UUID, meta: Meta, *, fingerprint: Fingerprint, template: str, link: Link) -> list[PatternEvent]:
    """A new pattern with its founding issue: it starts `emerging`."""
    return [
        PatternDetected(**envelope(meta, pattern_id, 1), name=pattern_name(template), fingerprint=fingerprint,
                        template=template, founding_issue_id=link.issue_id),
        IssueLinkedToPattern(**envelope(meta, pattern_id, 2), **msgspec.structs.asdict(link)),
    ]


def create(pattern_id: UUID, key: str, meta: Meta, *, name: str, status: PatternStatus, fingerprint: Fingerprint,
           tags: list[str], risk_score: int, confidence: float) -> list[PatternEvent]:
    """A pattern a user names by hand; its issues join as the user links them (`match_method: manual`)."""
    name = _clean_name(name)
    events: list[PatternEvent] = [PatternDetected(
        **envelope(meta, pattern_id, 1), name=name, fingerprint=fingerprint, template=name, founding_issue_id=None,
        grouping_key=key, initial_risk_score=max(0, min(100, risk_score)),
        initial_confidence=max(0.0, min(1.0, confidence)))]
    cleaned = _clean_tags(tags)
    if status != PatternStatus.EMERGING or cleaned:
        events.append(PatternUpdated(**envelope(meta, pattern_id, 2),
                                     status=status if status != PatternStatus.EMERGING else msgspec.UNSET,
                                     tags=cleaned if cleaned else msgspec.UNSET))
    return events


def link_issue(pattern: Pattern, link: Link, meta: Meta, template: str | None = None) -> list[PatternEvent]:
    """An issue joins once; a second member makes an emerging pattern active, and any member reopens a pattern
    that was watching or resolved (a recurrence)."""
    if link.issue_id in pattern.members:
        return []
    version = pattern.version + 1
    events: list[PatternEvent] = [IssueLinkedToPattern(**envelope(meta, pattern.id, version),
                                                       **msgspec.structs.asdict(link))]
    status: PatternStatus | msgspec.UnsetType = msgspec.UNSET
    recurring = pattern.status == PatternStatus.EMERGING and bool(pattern.members)
    if recurring or pattern.status in (PatternStatus.WATCHING, PatternStatus.RESOLVED):
        status = PatternStatus.ACTIVE
    if template == pattern.template:
        template = None
    if status is not msgspec.UNSET or template is not None:
        events.append(PatternUpdated(**envelope(meta, pattern.id, version + 1), status=status,
                                     template=msgspec.UNSET if template is None else template))
    return events


def unlink_issue(pattern: Pattern, issue_id: IssueId, reason: str, meta: Meta) -> list[PatternEvent]:
    if issue_id not in pattern.members:
        return []
    return [IssueUnlinkedFromPattern(**envelope(meta, pattern.id, pattern.version + 1), issue_id=issue_id,
                                     reason=reason)]


def update_pattern(pattern: Pattern, edit: PatternEdit, meta: Meta) -> list[PatternEvent]:
    """Name 1–200 characters, at most 20 tags; setting a field to its current value records nothing."""
    if pattern.merged_into is not None:
        raise InvalidTransition("a merged pattern is read-only", merged_into=pattern.merged_into)
    name = msgspec.UNSET if edit.name is msgspec.UNSET else _clean_name(edit.name)
    tags = msgspec.UNSET if edit.tags is msgspec.UNSET else _clean_tags(edit.tags)
    changed = PatternUpdated(
        **envelope(meta, pattern.id, pattern.version + 1),
        name=msgspec.UNSET if name == pattern.name else name,
        status=msgspec.UNSET if edit.status == pattern.status else edit.status,
        tags=msgspec.UNSET if tags is not msgspec.UNSET and tuple(tags) == pattern.tags else tags)
    if changed.name is msgspec.UNSET and changed.status is msgspec.UNSET and changed.tags is msgspec.UNSET:
        return []
    return [changed]


def merge(source: Pattern, target: Pattern, links: Sequence[Link], meta: Meta) -> list[PatternEvent]:
    """The source's issues move to the target (each link says `merge`); the source remembers where it went."""
    if source.id == target.id:
        raise InvalidValue("source_pattern_id", "must differ from the target pattern")
    if source.merged_into is not None or target.merged_into is not None:
        raise InvalidTransition("a merged pattern cannot be merged again")
    events: list[PatternEvent] = []
    version = source.version
    for issue_id in sorted(source.members):
        version += 1
        events.append(IssueUnlinkedFromPattern(**envelope(meta, source.id, version), issue_id=issue_id,
                                               reason="merged"))
    events.append(PatternMerged(**envelope(meta, source.id, version + 1),
                                into_pattern_id=PatternId(render("pat", target.id))))
    current = target
    for link in links:
        decided = link_issue(current, link, meta)
        events += decided
        current = project_pattern(current, cast(list[AnyPatternAggregateEvent], decided)) or current
    return events


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidValue("name", f"must be 1 to {NAME_MAX} characters")
    return name


def _clean_tags(tags: list[str]) -> list[str]:
    if len(tags) > TAGS_MAX:
        raise InvalidValue("tags", f"at most {TAGS_MAX} tags")
    return sorted({tag.strip() for tag in tags if tag.strip()})
