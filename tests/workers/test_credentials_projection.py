"""The `credentials` read model: equals the fold, ignores repeats, isolates tenants, authenticates by hash only,
and a rebuild gives the same rows (and working tokens)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from adapters.postgres import READER_ROLE, WRITER_ROLE, connect
from adapters.settings import Settings
from domain.credentials import service_account as accounts
from domain.credentials import token as tokens
from domain.credentials.events import TokenKind
from domain.credentials.grants import Grant
from domain.credentials.service_account import ServiceAccountEdit
from domain.events import DomainEvent
from domain.identity.roles import ALL_SCOPES, Role
from domain.ids import WorkspaceId, render
from projections.credentials import queries
from projections.credentials.projector import NAME, project
from tests.builders import T1, meta
from tests.workers.pipeline import appended, isolated, running, wait_for_projection
from workers.operations import rebuild

ONE = WorkspaceId("ws_01KV1PX3NQ3B497SHK7JTNT525")
TWO = WorkspaceId("ws_01KV1PX3NQ3B497SHK7JTNT999")
MAKER = Grant(scopes=ALL_SCOPES)


def history(workspace_id: WorkspaceId, tag: str) -> tuple[list[DomainEvent], dict[str, str]]:
    """A service account with a live token, a rotated-then-revoked token, an account deleted later; hashes by name."""
    at = meta(T1, workspace_id)
    account_id, dead_id, live_id, gone_id = (uuid.uuid4() for _ in range(4))
    hashes = {name: f"{tag}-{name}".ljust(64, "0") for name in ("live", "old", "new", "gone")}
    created = accounts.create_service_account(account_id=account_id, meta=at, name="CI", description="",
                                              role=Role.ANALYST, granter=Role.OWNER)
    account = accounts.project_service_account(None, [created])
    assert account is not None
    [renamed] = accounts.update_service_account(account, ServiceAccountEdit(role=Role.VIEWER), at, Role.OWNER)
    owner = render("sa", account_id)
    live = tokens.create_token(token_id=live_id, meta=at, kind=TokenKind.SERVICE_ACCOUNT, owner_id=owner,
                               name="live", scopes=("issues:read", "issues:write"), secret_hash=hashes["live"],
                               expires_at=T1 + timedelta(days=3650), grant=MAKER)
    old = tokens.create_token(token_id=dead_id, meta=at, kind=TokenKind.SERVICE_ACCOUNT, owner_id=owner,
                              name="old", scopes=("issues:read",), secret_hash=hashes["old"], expires_at=None,
                              grant=MAKER)
    dead = tokens.project_token(None, [old])
    assert dead is not None
    rotated = tokens.rotate_token(dead, hashes["new"], at, MAKER)
    [revoked] = tokens.revoke_token(tokens.evolve(dead, rotated), at)
    gone = tokens.create_token(token_id=gone_id, meta=at, kind=TokenKind.SCIM, owner_id=None, name="idp",
                               scopes=(), secret_hash=hashes["gone"], expires_at=T1 + timedelta(seconds=1),
                               grant=MAKER)
    return [created, renamed, live, old, rotated, revoked, gone], hashes


async def rows(settings: Settings, workspace_id: str) -> tuple[list[Any], list[Any]]:
    conn = await connect(settings)
    async with conn, conn.transaction():
        await conn.execute("SELECT set_config('role', %s, true), set_config('causeloop.workspace_id', %s, true)",
                           (READER_ROLE, workspace_id))
        tokens_ = await (await conn.execute("SELECT * FROM api_tokens ORDER BY name")).fetchall()  # no WHERE: RLS
        accounts_ = await (await conn.execute("SELECT * FROM service_accounts ORDER BY id")).fetchall()
        return tokens_, accounts_


async def authenticate(settings: Settings, secret_hash: str) -> queries.Authenticated | None:
    conn = await connect(settings)
    async with conn:
        return await queries.authenticate(conn, secret_hash)


async def write(settings: Settings, events: list[DomainEvent]) -> None:
    conn = await connect(settings)
    async with conn, conn.transaction():
        await conn.execute(f"SET LOCAL role {WRITER_ROLE}")
        await project(conn, list(enumerate(events, start=1)))  # type: ignore[arg-type]


async def test_the_read_model_follows_the_events_and_ignores_repeats(settings: Settings) -> None:
    events, _ = history(ONE, "a")
    with isolated(settings) as s:
        for batch in (events, events[2:5], events):
            await write(s, batch)
        tokens_, accounts_ = await rows(s, ONE)

    assert [(t["name"], t["status"], t["version"]) for t in tokens_] == [
        ("idp", "active", 1), ("live", "active", 1), ("old", "revoked", 3)]
    assert [(a["role"], a["status"], a["version"]) for a in accounts_] == [("viewer", "active", 2)]
    old = next(t for t in tokens_ if t["name"] == "old")
    assert old["rotated_at"] is not None and old["secret_hash"].startswith("a-new")


async def test_a_reader_sees_only_its_workspace_and_authentication_answers_only_usable_tokens(
        settings: Settings) -> None:
    events_one, hashes = history(ONE, "b")
    events_two, _ = history(TWO, "c")
    with isolated(settings) as s:
        await write(s, events_one + events_two)
        tokens_two, accounts_two = await rows(s, TWO)
        found = await authenticate(s, hashes["live"])
        refused = [await authenticate(s, hashes[name]) for name in ("old", "new", "gone")]
        unknown = await authenticate(s, "f" * 64)

    assert {t["workspace_id"] for t in tokens_two} == {TWO} and {a["workspace_id"] for a in accounts_two} == {TWO}
    assert found is not None and found.workspace_id == ONE and found.role == "viewer"
    assert found.scopes == ["issues:read", "issues:write"]
    assert refused == [None, None, None] and unknown is None


async def test_a_rebuild_from_zero_equals_the_live_read_model_and_tokens_still_authenticate(
        settings: Settings) -> None:
    events_one, hashes = history(ONE, "d")
    events_two, _ = history(TWO, "e")
    with isolated(settings) as s:
        async with running(s, projections=(NAME,)):
            await wait_for_projection(s, appended(s, events_one + events_two), name=NAME)
            live = [await rows(s, ws) for ws in (ONE, TWO)]

            await asyncio.to_thread(rebuild, s, NAME)
            rebuilt = [await rows(s, ws) for ws in (ONE, TWO)]
            found = await authenticate(s, hashes["live"])

    assert rebuilt == live and len(live[0][0]) == 3
    assert found is not None and found.workspace_id == ONE
