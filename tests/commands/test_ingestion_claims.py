"""Pushes sharing issue streams take turns within a process; pushes of other streams run side by side."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from commands.ingestion import KeyClaims

A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


async def test_pushes_sharing_a_stream_take_turns_and_others_do_not_wait() -> None:
    claims = KeyClaims()
    order: list[str] = []
    first_holding = asyncio.Event()
    release_first = asyncio.Event()

    async def push(name: str, streams: set[uuid.UUID], hold: asyncio.Event | None = None) -> None:
        async with claims.holding(streams):
            order.append(f"{name} in")
            if hold is not None:
                first_holding.set()
                await hold.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(push("first", {A, B}, release_first))
    await first_holding.wait()
    overlapping = asyncio.create_task(push("overlapping", {B, C}))
    await push("disjoint", {C})  # C is not held yet: the overlapping push is still waiting for B
    assert order == ["first in", "disjoint in", "disjoint out"]

    release_first.set()
    await asyncio.gather(first, overlapping)
    assert order[3:] == ["first out", "overlapping in", "overlapping out"]


async def test_a_push_that_fails_releases_its_streams() -> None:
    claims = KeyClaims()

    async def failing() -> None:
        async with claims.holding({A}):
            raise RuntimeError("append refused")

    with pytest.raises(RuntimeError):
        await failing()
    async with asyncio.timeout(1), claims.holding({A}):
        pass
