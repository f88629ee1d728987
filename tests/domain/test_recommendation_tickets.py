"""Pushing a recommendation to a tracker: the targets accepted, the connector chosen, and one ticket per target."""

from __future__ import annotations

import uuid

import pytest

from domain.connectors.connector import Connector
from domain.connectors.events import ConnectorStatus
from domain.errors import InvalidValue
from domain.recommendations import recommendation as rules
from domain.recommendations.tickets import Tracker, TrackerNotConnected, check_target, choose_connector
from tests.builders import T0, WS, meta
from tests.domain.test_recommendation_rules import created


def connector(kind: str = "github", status: ConnectorStatus = ConnectorStatus.CONNECTED, credentials: bool = True,
              **config: object) -> Connector:
    return Connector(id=uuid.uuid4(), workspace_id=WS, version=1, type=kind, display_name=kind, config=dict(config),
                     schedule="*/30 * * * *", credentials_ciphertext="v1.x" if credentials else None, status=status)


@pytest.mark.parametrize(("tracker", "project"), [("jira", "RISK"), ("jira", "OPS_2"), ("github", "acme/web"),
                                                  ("github", "Acme-Inc/web.site_v2")])
def test_each_tracker_takes_its_own_project_form(tracker: str, project: str) -> None:
    assert check_target(tracker, project) == Tracker(tracker)


@pytest.mark.parametrize(("tracker", "project", "field"), [
    ("linear", "ENG", "tracker"), ("servicenow", "RISK", "tracker"), ("jira", "acme/web", "project"),
    ("jira", "risk", "project"), ("jira", "R", "project"), ("github", "RISK", "project"),
    ("github", "acme/..", "project"), ("github", "-acme/web", "project")])
def test_other_trackers_and_misshapen_projects_are_refused(tracker: str, project: str, field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        check_target(tracker, project)
    assert refused.value.field == field
    if field == "tracker":
        assert "github, jira" in refused.value.message


def test_the_connector_is_a_usable_one_of_the_trackers_type_the_repositorys_own_first() -> None:
    oldest, paused = connector(owner="acme", repo="web"), connector(status=ConnectorStatus.PAUSED)
    failing, matching = connector(status=ConnectorStatus.ERROR, owner="acme", repo="api"), connector(owner="x")
    jira = connector("jira")

    assert choose_connector([paused, oldest, failing], Tracker.GITHUB, "Acme/API") is failing
    assert choose_connector([paused, oldest, failing], Tracker.GITHUB, "other/repo") is oldest
    assert choose_connector([matching, jira], Tracker.JIRA, "RISK") is jira


@pytest.mark.parametrize("candidates", [[], [connector("jira")], [connector(status=ConnectorStatus.PAUSED)],
                                        [connector(credentials=False)],
                                        [connector(status=ConnectorStatus.PENDING_AUTH)]])
def test_without_a_usable_connector_the_tracker_is_not_connected(candidates: list[Connector]) -> None:
    with pytest.raises(TrackerNotConnected) as refused:
        choose_connector(candidates, Tracker.GITHUB, "acme/web")
    assert refused.value.code == "tracker_not_connected"


def test_a_push_is_recorded_once_per_tracker_and_project() -> None:
    state = created()
    pushed = rules.record_push(state, Tracker.GITHUB, "acme/web", "con_x", "acme/web#1", "https://gh/1", meta(T0))
    after = rules.project_recommendation(state, pushed)  # type: ignore[arg-type]
    assert after is not None

    assert [(t.key, t.pushed_at) for t in after.tickets] == [("acme/web#1", T0)]
    assert rules.record_push(after, Tracker.GITHUB, "ACME/Web", "con_x", "k", "u", meta(T0)) == []
    assert len(rules.record_push(after, Tracker.JIRA, "RISK", "con_y", "RISK-1", "u", meta(T0))) == 1
