"""An issue's analysis (stage, risk, explanation) from what its pattern holds, kept current as the pattern grows.

An issue is analyzed when it joins a pattern; later arrivals change what is true of it (the first issue of a
pattern is `pattern_found` until a second one comes within the recurrence window, and risk grows with the
pattern's issue count and services). So each arrival also names the members whose recorded analysis it made
stale: the ones it brought into the loop, and, checking a bounded number of members round robin, those whose
risk moved by `RISK_MOVE` points or more. The work per arrival stays bounded however big the pattern is, and
risk stops moving once a pattern has 50 issues and 5 services (the formula's maxima), so refreshes die out.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from domain.issues.events import Stage

CHECKED_PER_ARRIVAL = 16
"""Members whose risk one arrival re-checks (round robin): bounded work, and every member of a pattern of n is
re-checked within n/16 arrivals."""
RISK_MOVE = 3
"""Risk points a member's recorded risk may drift before it is recorded again (smaller moves are noise)."""
_SEVERITY_WEIGHT = {"critical": 1.0, "high": 0.7, "medium": 0.4, "low": 0.1}


class Members:
    """One pattern's members as analysis needs them: first-seen times (sorted), services, each member's first
    seen and recorded (stage, risk), and a round-robin cursor over them."""

    __slots__ = ("_cursor", "_order", "_table", "_unchecked", "first_seen", "lonely", "recorded", "services", "times")

    def __init__(self) -> None:
        self.times: list[datetime] = []
        self.services: set[str] = set()
        self.first_seen: dict[str, datetime] = {}
        self.recorded: dict[str, tuple[Stage, int]] = {}
        self.lonely: dict[str, datetime] = {}
        """Members recorded `pattern_found`: the only ones an arrival can bring into the loop."""
        self._order: list[str] = []
        self._cursor = 0
        self._table: dict[str, int] = {}
        """The risk per severity when the current round-robin turn started; `_unchecked` members are left in it."""
        self._unchecked = 0

    def add(self, issue_id: str, at: datetime, service: str | None) -> None:
        """Count one issue (once: an issue analyzed again is not counted again)."""
        if service:
            self.services.add(service)
        if issue_id in self.first_seen:
            return
        self.first_seen[issue_id] = at
        bisect.insort(self.times, at)
        self._order.append(issue_id)

    def recurs(self, at: datetime, window: timedelta) -> bool:
        """Whether another member was first seen within `window` of `at` (a member at `at` counts itself once)."""
        low = bisect.bisect_left(self.times, at - window)
        high = bisect.bisect_right(self.times, at + window)
        return high - low > 1

    def record(self, issue_id: str, stage: Stage, risk: int) -> None:
        """The analysis recorded for a member (decided now, or folded from its `IssueAnalyzed`)."""
        if issue_id not in self.first_seen:
            return
        self.recorded[issue_id] = (stage, risk)
        if stage == Stage.PATTERN_FOUND:
            self.lonely[issue_id] = self.first_seen[issue_id]
        else:
            self.lonely.pop(issue_id, None)

    def absorb(self, other: Members) -> None:
        """A merged pattern's members join this one."""
        for issue_id in other._order:
            if issue_id not in self.first_seen:
                self.first_seen[issue_id] = other.first_seen[issue_id]
                self._order.append(issue_id)
                if issue_id in other.recorded:
                    self.record(issue_id, *other.recorded[issue_id])
        self.times = sorted(self.times + other.times)
        self.services |= other.services

    def to_check(self, arriving: str, at: datetime, window: timedelta, severity_of: Callable[[str], str]
                 ) -> list[str]:
        """Members (not `arriving`) whose recorded analysis this arrival made stale, each to be recorded again: the
        lonely ones first seen within `window` of it (now in the loop), and those whose risk moved `RISK_MOVE`
        points or more. Risk is re-checked round
        robin, `CHECKED_PER_ARRIVAL` members per arrival, for one full turn after the pattern's risk table moved."""
        near = [issue_id for issue_id, seen in self.lonely.items()
                if issue_id != arriving and abs(seen - at) <= window]
        table = self._risk_table()
        if table != self._table:
            self._table, self._unchecked = table, len(self._order)
        moved: list[str] = []
        for _ in range(min(CHECKED_PER_ARRIVAL, self._unchecked)):
            self._unchecked -= 1
            self._cursor %= len(self._order)
            issue_id = self._order[self._cursor]
            self._cursor += 1
            recorded = self.recorded.get(issue_id)
            risk = table.get(severity_of(issue_id), table["medium"])
            if issue_id != arriving and issue_id not in near and (recorded is None
                                                                  or abs(recorded[1] - risk) >= RISK_MOVE):
                moved.append(issue_id)
        return near + moved

    def _risk_table(self) -> dict[str, int]:
        frequency = min(1.0, math.log(1 + len(self.times)) / math.log(51))
        spread = min(1.0, max(0, len(self.services) - 1) / 4)
        base = 0.35 * frequency + 0.25 + 0.15 * spread
        return {severity: round(100 * (base + 0.25 * weight)) for severity, weight in _SEVERITY_WEIGHT.items()}

    def risk(self, severity: str) -> int:
        """The pattern's risk formula (docs/patterns.md) for one member: recency 1, its own severity, the
        pattern's issue count and services now."""
        table = self._risk_table()
        return table.get(severity, table["medium"])
