"""The relay and projector recover by themselves when the NATS server restarts (reconnect + resubscribe)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from adapters.settings import Settings
from cli.embedded import free_port, start_nats, stop_nats
from commands.issues import OpenIssue, issue_id_of
from tests.workers.pipeline import caller, isolated, issue_commands, read_model, running, wait_for_projection

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


async def test_events_written_while_nats_was_down_are_projected_after_it_returns(settings: Settings,
                                                                                  tmp_path: Path) -> None:
    port = free_port(14222)
    url = await asyncio.to_thread(start_nats, tmp_path, port=port)
    try:
        with isolated(msgspec.structs.replace(settings, nats_url=url)) as s:
            with issue_commands(s) as (_, commands):
                first = await commands.open_issue(OpenIssue(title="before the outage"), caller())
                async with running(s):
                    await wait_for_projection(s, first.position)

                    await asyncio.to_thread(stop_nats, tmp_path)
                    during = await commands.open_issue(OpenIssue(title="during the outage"), caller())
                    await asyncio.to_thread(start_nats, tmp_path, port=port)
                    after = await commands.open_issue(OpenIssue(title="after the outage"), caller())
                    await wait_for_projection(s, after.position, timeout=60)

            assert {issue_id_of(first), issue_id_of(during), issue_id_of(after)} <= set(read_model(s)[0])
    finally:
        await asyncio.to_thread(stop_nats, tmp_path)
