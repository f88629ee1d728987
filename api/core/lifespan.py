"""What the API process holds open while it serves: pools, the event store, group commit, NATS, the waiter, the
standing cache."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from litestar import Litestar

from adapters.event_store import EventStore
from adapters.heap import freeze_startup_objects
from adapters.nats import connect as nats_connect
from adapters.postgres import create_pool
from adapters.settings import Settings
from api.core.standing_cache import StandingCache
from commands.credentials import CredentialCommands
from commands.group_commit import GroupCommitter
from commands.ingestion import IngestionCommands
from commands.issues import IssueCommands
from commands.members import MemberCommands
from commands.patterns import PatternCommands
from commands.predictions import PredictionCommands
from commands.recommendations import RecommendationCommands
from commands.runner import CommandRunner
from commands.scim import ScimCommands
from commands.workspace_settings import WorkspaceSettingsCommands
from projections.position_waiter import PositionWaiter

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    store = EventStore(settings, pool_size=settings.db_pool_size)
    committer = GroupCommitter(store, max_batch=settings.group_commit_max_batch)
    read_pool = create_pool(settings, min_size=2, name="api-read")
    standing = StandingCache(settings.database_schema, max_age_s=settings.standing_cache_max_age_s)
    waiter = PositionWaiter(settings, companions=[standing])
    await read_pool.open()
    await waiter.start()
    runner = CommandRunner(store, committer)
    app.state.update(store=store, committer=committer, command_runner=runner, issue_commands=IssueCommands(runner),
                     credential_commands=CredentialCommands(runner),
                     scim_commands=ScimCommands(runner), read_pool=read_pool,
                     position_waiter=waiter, standing_cache=standing,
                     nats=await _nats_or_none(settings))
    app.state.update(member_commands=MemberCommands(runner))
    app.state.pattern_commands = PatternCommands(runner)
    app.state.recommendation_commands = RecommendationCommands(runner)
    app.state.prediction_commands = PredictionCommands(runner)
    app.state.update(ingestion_commands=IngestionCommands(runner))
    app.state.workspace_settings_commands = WorkspaceSettingsCommands(runner)
    freeze_startup_objects()
    try:
        yield
    finally:
        if app.state.nats is not None:
            await app.state.nats.close()
        await waiter.stop()
        committer.close()
        store.close()
        await read_pool.close()


async def _nats_or_none(settings: Settings) -> object | None:
    """The API never publishes (the relay does); it connects only so /ready can report NATS reachability."""
    try:
        return await nats_connect(settings, name="causeloop-api")
    except Exception as exc:
        log.warning("NATS unreachable at startup: %s", exc)
        return None
