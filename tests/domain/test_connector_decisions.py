"""Connector and sync-run decisions (pure)."""

from __future__ import annotations

from uuid import UUID

import msgspec
import pytest

from domain.connectors import connector as decide
from domain.connectors.connector import ConnectorEdit, SyncNotSupported
from domain.connectors.events import ConnectorStatus, Counts, RunKind, RunStatus, SyncRunFailed
from domain.errors import InvalidTransition, InvalidValue
from tests.builders import T0, meta

CON = UUID("019a0c1e-0000-7000-8000-0000000000cc")
RUN = UUID("019a0c1e-0000-7000-8000-0000000000dd")


def github(credentials: str | None = "v1.x") -> decide.Connector:
    created = decide.create_connector(connector_id=CON, meta=meta(T0), connector_type="github", display_name=None,
                                      config={"owner": "a", "repo": "b"}, schedule="*/30 * * * *",
                                      credentials_ciphertext=credentials)
    connector = decide.project_connector([created])
    assert connector is not None
    return connector


def test_a_connector_is_named_after_its_type_and_an_oauth_one_without_credentials_waits() -> None:
    linear = decide.project_connector([decide.create_connector(
        connector_id=CON, meta=meta(T0), connector_type="linear", display_name=None, config={},
        schedule="0 * * * *", credentials_ciphertext=None)])
    assert github().display_name == "GitHub" and github().status == ConnectorStatus.CONNECTED
    assert linear is not None and linear.status == ConnectorStatus.PENDING_AUTH


def test_settings_are_checked_against_the_catalogue_schema() -> None:
    with pytest.raises(InvalidValue, match=r"config\.repo"):
        decide.create_connector(connector_id=CON, meta=meta(T0), connector_type="github", display_name=None,
                                config={"owner": "a"}, schedule="* * * * *", credentials_ciphertext=None)
    with pytest.raises(InvalidValue, match=r"config\.service_ids"):
        decide.check_against(decide.entry_of("pagerduty").config_schema, {"service_ids": "P1"}, "config")
    with pytest.raises(InvalidValue, match="type"):
        decide.entry_of("trello")


def test_unchanged_edits_pauses_and_resumes_record_nothing() -> None:
    connector = github()
    assert decide.reconfigure(connector, ConnectorEdit(display_name="GitHub", schedule="*/30 * * * *"),
                              meta(T0)) == []
    assert decide.resume(connector, meta(T0)) == []
    paused = decide.project_connector([*[decide.create_connector(
        connector_id=CON, meta=meta(T0), connector_type="github", display_name=None,
        config={"owner": "a", "repo": "b"}, schedule="*/30 * * * *", credentials_ciphertext="v1.x")],
        *decide.pause(connector, meta(T0))])
    assert paused is not None and decide.pause(paused, meta(T0)) == []
    with pytest.raises(InvalidTransition):
        decide.check_syncable(paused)


def test_push_only_types_and_connectors_without_credentials_do_not_sync() -> None:
    custom = decide.project_connector([decide.create_connector(
        connector_id=CON, meta=meta(T0), connector_type="custom_api", display_name="Deploys", config={},
        schedule="* * * * *", credentials_ciphertext=None)])
    assert custom is not None
    with pytest.raises(SyncNotSupported):
        decide.check_syncable(custom)
    with pytest.raises(InvalidTransition):
        decide.check_syncable(github(credentials=None))


def test_a_failed_run_marks_the_connector_error_and_keeps_its_cursor_until_a_success() -> None:
    connector = msgspec.structs.replace(github(), cursor={"since": "2026-11-01T00:00:00Z"})
    queued = decide.queue_run(connector, run_id=RUN, connector_id="con_x", kind=RunKind.MANUAL, backfill_days=None,
                              meta=meta(T0))
    run = decide.project_run([queued, *decide.start_run(decide.evolve_run(None, queued), "w", meta(T0))])
    assert run is not None and run.status == RunStatus.RUNNING
    failed = decide.fail(run, connector, Counts(fetched=3), "HTTP 503", meta(T0))
    after = decide.evolve(connector, failed[1])  # type: ignore[arg-type]
    assert isinstance(failed[0], SyncRunFailed) and after.status == ConnectorStatus.ERROR
    assert after.cursor == {"since": "2026-11-01T00:00:00Z"} and after.consecutive_failures == 1
    synced = decide.succeed(run, after, Counts(), {"since": "2026-11-02T00:00:00Z"}, meta(T0))
    healed = decide.evolve(after, synced[1])  # type: ignore[arg-type]
    assert healed.status == ConnectorStatus.CONNECTED and healed.consecutive_failures == 0
    assert healed.cursor == {"since": "2026-11-02T00:00:00Z"}
    with pytest.raises(InvalidTransition):
        decide.start_run(run, "w2", meta(T0))
    with pytest.raises(InvalidValue):
        decide.queue_run(connector, run_id=RUN, connector_id="c", kind=RunKind.BACKFILL, backfill_days=400,
                         meta=meta(T0))
