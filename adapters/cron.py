"""Cron schedules through croniter (a maintained library, not a hand parser): five fields, UTC."""

from __future__ import annotations

from datetime import datetime

from croniter import croniter


def is_valid(expression: str) -> bool:
    """Standard five-field cron (minute hour day month weekday); croniter's seconds/years extensions are refused."""
    return len(expression.split()) == 5 and bool(croniter.is_valid(expression))


def next_after(expression: str, moment: datetime) -> datetime:
    """The first time the schedule fires strictly after `moment` (timezone-aware, UTC)."""
    fired: datetime = croniter(expression, moment).get_next(datetime)
    return fired
