"""Read-your-writes for every command route: hold the 2xx until the projections the next reads use have the write."""

from __future__ import annotations

from litestar.datastructures import State

from adapters.settings import Settings
from projections.position_waiter import PositionWaiter

POSITION_HEADER = "X-Causeloop-Position"
CONSISTENCY_HEADER = "X-Causeloop-Consistency"


async def settle(state: State, *waits: tuple[str, int]) -> dict[str, str]:
    """Wait (each bounded by READ_YOUR_WRITES_TIMEOUT_S) until each (projection, position) is committed; a position
    of 0 (nothing was appended) waits for nothing. The headers: the highest position the answer reflects (0: none),
    and `X-Causeloop-Consistency: pending` when a wait timed out."""
    waiter: PositionWaiter = state.position_waiter
    settings: Settings = state.settings
    headers = {POSITION_HEADER: str(max((position for _, position in waits), default=0))}
    for projection, position in waits:
        if position and not await waiter.wait(projection, position, settings.read_your_writes_timeout_s):
            headers[CONSISTENCY_HEADER] = "pending"
    return headers
