"""The per-process standing cache (api/core/standing_cache.py) on its own: no services, a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from api.core.standing_cache import StandingCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Reads:
    """A read that answers `answer` (the workspace id it is about) and counts its calls."""

    def __init__(self, answer: str | None = "ws_a") -> None:
        self.answer = answer
        self.calls = 0

    async def __call__(self) -> str | None:
        self.calls += 1
        return self.answer


def listening_cache(clock: Clock | None = None, max_age_s: float = 5.0) -> StandingCache:
    cache = StandingCache("s", max_age_s=max_age_s, clock=clock or Clock())
    cache.listening()
    return cache


async def ask(cache: StandingCache, key: str, read: Reads) -> str | None:
    return await cache.get(key, read, lambda answer: answer)


@pytest.mark.parametrize(("announcement", "reads"), [("ws_a,ws_c", (2, 1)), ("*", (2, 2)), ("ws_c", (1, 1))],
                         ids=["its workspace", "every workspace", "another workspace"])
async def test_an_answer_is_kept_until_its_workspace_is_announced(announcement: str, reads: tuple[int, int]) -> None:
    cache, a, b = listening_cache(), Reads("ws_a"), Reads("ws_b")
    for _ in range(3):
        await ask(cache, "k-a", a)
        await ask(cache, "k-b", b)

    cache.notified(announcement)
    await ask(cache, "k-a", a)
    await ask(cache, "k-b", b)

    assert (a.calls, b.calls) == reads


async def test_a_read_that_raced_an_announcement_is_answered_but_not_kept() -> None:
    cache = listening_cache()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> str | None:
        started.set()
        await release.wait()
        return "ws_a"

    racing = asyncio.create_task(cache.get("k", slow, lambda answer: answer))
    await started.wait()
    cache.notified("ws_a")  # the rows changed while the read was on its way
    release.set()
    fresh = Reads("ws_a")

    assert await racing == "ws_a"
    await ask(cache, "k", fresh)
    assert fresh.calls == 1


async def test_an_answer_older_than_the_maximum_age_is_read_again() -> None:
    clock = Clock()
    cache, read = listening_cache(clock, max_age_s=5.0), Reads()
    await ask(cache, "k", read)
    clock.now += 4.9
    await ask(cache, "k", read)
    clock.now += 0.2

    await ask(cache, "k", read)

    assert read.calls == 2


async def test_nothing_is_served_from_the_cache_while_not_listening() -> None:
    cache, read = listening_cache(), Reads()
    await ask(cache, "k", read)
    cache.lost()
    await ask(cache, "k", read)
    await ask(cache, "k", read)
    cache.listening()
    await ask(cache, "k", read)
    await ask(cache, "k", read)

    assert read.calls == 4


async def test_an_answer_about_no_workspace_is_never_kept() -> None:
    cache, unknown = listening_cache(), Reads(None)
    await ask(cache, "k", unknown)
    await ask(cache, "k", unknown)

    assert unknown.calls == 2
