"""Read-your-writes for every command route: hold the 2xx until the projection the next GET reads has the write."""

from __future__ import annotations

from adapters.settings import Settings
from projections.position_waiter import PositionWaiter

POSITION_HEADER = "X-Causeloop-Position"
CONSISTENCY_HEADER = "X-Causeloop-Consistency"


async def read_your_writes(waiter: PositionWaiter, settings: Settings, projection: str,
                           position: int) -> dict[str, str]:
    """Waits (bounded by READ_YOUR_WRITES_TIMEOUT_S) for `projection` to commit `position`; the headers that say
    which position the answer reflects, and `X-Causeloop-Consistency: pending` when the wait timed out."""
    caught_up = await waiter.wait(projection, position, settings.read_your_writes_timeout_s)
    headers = {POSITION_HEADER: str(position)}
    if not caught_up:
        headers[CONSISTENCY_HEADER] = "pending"
    return headers
