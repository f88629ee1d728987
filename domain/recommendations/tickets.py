"""Pushing a recommendation to an issue tracker: which trackers, what a project looks like in each, which of the
workspace's connectors creates the ticket, and when a push is a repeat of an earlier one."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

import msgspec

from domain.connectors.connector import Connector
from domain.connectors.events import ConnectorStatus
from domain.errors import DomainError, InvalidValue


class Tracker(StrEnum):
    JIRA = "jira"
    GITHUB = "github"


SUPPORTED = tuple(tracker.value for tracker in Tracker)
USABLE = frozenset({ConnectorStatus.CONNECTED, ConnectorStatus.ERROR})
"""A connector whose last sync failed (`error`) still holds working credentials as far as we know; a paused one was
switched off by an admin and one waiting for OAuth has none."""
_JIRA_KEY = r"[A-Z][A-Z0-9_]{1,254}"
_GITHUB_REPOSITORY = r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}"
PROJECT_PATTERN = f"^(?:{_JIRA_KEY}|{_GITHUB_REPOSITORY})$"
"""Either form (the request schema's); which one the tracker needs is checked by `check_target`."""
_PROJECT = {
    Tracker.JIRA: (re.compile(_JIRA_KEY), "a Jira project key: upper-case letters, digits and _, starting with a "
                                          "letter, e.g. RISK"),
    Tracker.GITHUB: (re.compile(_GITHUB_REPOSITORY), "a GitHub repository as owner/repo, e.g. acme/web"),
}


class TrackerNotConnected(DomainError):
    """No connector of the tracker's type can create tickets in this workspace (none, paused, no credentials)."""

    code = "tracker_not_connected"


class Ticket(msgspec.Struct, frozen=True, kw_only=True):
    tracker: str
    project: str
    connector_id: str
    key: str
    url: str
    pushed_at: datetime


def check_target(tracker: str, project: str) -> Tracker:
    """The tracker must be one tickets can be created in, and the project must be written its way."""
    if tracker not in SUPPORTED:
        raise InvalidValue("tracker", f"must be one of {', '.join(sorted(SUPPORTED))} (tickets cannot be created in "
                                      f"{tracker[:40]!r} yet)")
    chosen = Tracker(tracker)
    pattern, meaning = _PROJECT[chosen]
    if not pattern.fullmatch(project) or project.endswith(("/.", "/..")):
        raise InvalidValue("project", f"must be {meaning}")
    return chosen


def same_target(ticket: Ticket, tracker: Tracker, project: str) -> bool:
    """GitHub names are case-insensitive (`Acme/Web` is `acme/web`); Jira keys are upper case."""
    if ticket.tracker != tracker.value:
        return False
    return ticket.project.casefold() == project.casefold() if tracker == Tracker.GITHUB else ticket.project == project


def existing_ticket(tickets: Sequence[Ticket], tracker: Tracker, project: str) -> Ticket | None:
    """A push to a tracker and project that already has the recommendation's ticket creates no other."""
    return next((ticket for ticket in tickets if same_target(ticket, tracker, project)), None)


def choose_connector(connectors: Sequence[Connector], tracker: Tracker, project: str) -> Connector:
    """The connector that creates the ticket: a live one of the tracker's type with credentials (connected, or in
    error after a failed sync). For GitHub, one configured for the same repository first; otherwise the oldest
    (`connectors` come oldest first)."""
    usable = [c for c in connectors if c.type == tracker.value and not c.deleted and c.status in USABLE
              and c.credentials_ciphertext is not None]
    if not usable:
        raise TrackerNotConnected(
            f"no {tracker.value} connector with credentials is connected in this workspace: create one "
            f"(POST /v1/connectors) or resume it first", tracker=tracker.value)
    if tracker == Tracker.GITHUB:
        for connector in usable:
            repository = f"{connector.config.get('owner', '')}/{connector.config.get('repo', '')}"
            if repository.casefold() == project.casefold():
                return connector
    return usable[0]
