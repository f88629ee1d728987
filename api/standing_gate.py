"""The caller's standing check, carried by a route's own read or write: one round trip where there were two.

Every request re-checks its token against the read models (api/principals.py). On a route marked
`opt=FOLD_STANDING` the auth middleware verifies the token but leaves that check pending; the route's reader
(`reader`) sends the check first in its one message, and the answer decides before any row is used. The
promise stays that of the check up front — nothing of the answer leaves, and a dead token gets its 401
whatever else is wrong with its request:
- the reader settles the gate before returning rows: 401 for a dead token, 403 `mfa_required`, or 403
  `forbidden` when the caller's current role no longer grants the route's scope (the guards ran on the
  token's claims; they are run again on the narrowed principal);
- on a command route the check rides with the append instead: the request's Caller carries it as the
  precondition of its write (`precondition`), the group committer reads it together with the other queued
  commands' checks just before the append, and a refused command appends nothing;
- a route that answers without settling (an early 304, say) has its response held at its first message until
  the gate is settled by a round trip of its own, and once refused only the refusal's own error goes out,
  even if the route caught it;
- an error raised before settling (a bad parameter, a guard) is replaced by the check's error when the
  check fails, as the check up front would have answered first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Protocol

from litestar.datastructures import State
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, Statement, tenant_read
from adapters.tokens import Principal

FOLD_STANDING_OPT_KEY: Final = "fold_standing"
FOLD_STANDING: Final[dict[str, Any]] = {FOLD_STANDING_OPT_KEY: True}
"""`opt=FOLD_STANDING` on a read route whose handler reads through `reader(...)`."""
_GATE_KEY: Final = "causeloop.standing_gate"

Rows = list[list[dict[str, Any]]]
Reader = Callable[[Sequence[Statement]], Awaitable[Rows]]


class StandingFold(Protocol):
    """How the check travels inside a read: its statement, and the verdict on its one row."""

    def statement(self, principal: Principal) -> Statement: ...

    def judge(self, principal: Principal, row: Mapping[str, Any]) -> Principal | None: ...


def folds_standing(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return handler is not None and bool(handler.opt.get(FOLD_STANDING_OPT_KEY))


class StandingGate:
    """One request's pending check: settled once, by the route's read or else by a round trip of its own."""

    def __init__(self, claimed: Principal, scope: Scope, fold: StandingFold,
                 loader: Callable[[Principal, State], Awaitable[Principal | None]], state: State,
                 admit: Callable[[Principal | None], Principal]) -> None:
        self.claimed = claimed
        self.scope = scope
        self.fold = fold
        self.loader = loader
        self.state = state
        self.admit = admit
        self.settled = False
        self.refusal: Exception | None = None

    @property
    def pending(self) -> bool:
        return not self.settled and self.refusal is None

    def settle(self, row: Mapping[str, Any]) -> None:
        """Decide on the check's row, read in the route's own transaction; raises the refusal."""
        self._decide(lambda: self.fold.judge(self.claimed, row))

    async def settle_alone(self) -> None:
        """The check as its own round trip (the route did not carry it); raises the refusal, also a past one."""
        if self.pending:
            found = await self.loader(self.claimed, self.state)
            self._decide(lambda: found)
        elif self.refusal is not None:
            raise self.refusal

    def _decide(self, verdict: Callable[[], Principal | None]) -> None:
        try:
            self.scope["user"] = self.admit(verdict())
        except Exception as refusal:
            self.refusal = refusal
            raise
        self.settled = True

    async def run(self, next_app: ASGIApp, receive: Receive, send: Send) -> None:
        """`next_app` with the claimed principal as `scope["user"]` until settled, and nothing sent before."""
        self.scope["user"] = self.claimed
        self.scope.setdefault("state", {})[_GATE_KEY] = self
        forwarded = False

        async def gated_send(message: Message) -> None:
            nonlocal forwarded
            if self.pending:
                await self.settle_alone()
            elif self.refusal is not None and not forwarded and not _answers(message, self.refusal):
                raise self.refusal  # the route caught its refusal: whatever it answers instead must not leave
            forwarded = True
            await send(message)

        try:
            await next_app(self.scope, receive, gated_send)
        except Exception:
            if self.settled or forwarded:
                raise
            # Nothing left: Litestar's route-level error handler marked the response started when it passed its
            # first message to gated_send, which refused it. Unmark it, so the app's handler sends the refusal.
            ScopeState.from_scope(self.scope).response_started = False
            await self.settle_alone()
            raise


def _answers(message: Message, refusal: Exception) -> bool:
    """Whether `message` starts the refusal's own error response (Litestar rendering the raised refusal)."""
    return message["type"] != "http.response.start" or message["status"] == getattr(refusal, "status", None)


def _gate(scope: Scope) -> StandingGate | None:
    """The request's gate, whatever its state (None on a route that does not carry the check)."""
    found = scope.get("state", {}).get(_GATE_KEY)
    return found if isinstance(found, StandingGate) else None


def _pending_gate(scope: Scope) -> StandingGate | None:
    gate = _gate(scope)
    return gate if gate is not None and gate.pending else None


async def settle_now(scope: Scope) -> None:
    """Before a side effect outside the route's own read or write (an idempotency claim): the check as its own
    round trip, when still pending."""
    if (gate := _pending_gate(scope)) is not None:
        await gate.settle_alone()


class StandingPrecondition:
    """The pending check as the precondition of the request's command (commands.group_commit.Precondition): the
    group committer reads it with the other queued commands' checks in one round trip just before the append,
    and appends nothing of a command it refuses. Decided once per request; later verdicts repeat the first."""

    def __init__(self, gate: StandingGate) -> None:
        self.gate = gate

    @property
    def needed(self) -> bool:
        return self.gate.pending

    def query(self) -> tuple[str, Sequence[object]]:
        statement = self.gate.fold.statement(self.gate.claimed)
        return statement.text, statement.params

    def verdict(self, row: Mapping[str, Any] | None) -> None:
        if self.gate.refusal is not None:
            raise self.gate.refusal
        if self.gate.settled:
            return
        if row is None:
            raise RuntimeError("the standing check returned no row")
        self.gate.settle(row)


def precondition(scope: Scope) -> StandingPrecondition | None:
    """The request's pending check, for its command to carry to the append (None: nothing pending)."""
    gate = _pending_gate(scope)
    return None if gate is None else StandingPrecondition(gate)


def reader(scope: Scope, pool: AsyncConnectionPool[AsyncConn], workspace_id: str) -> Reader:
    """`tenant_read` for this request: while its check is pending, the check rides first in the same message."""
    gate = _gate(scope)

    async def read(statements: Sequence[Statement]) -> Rows:
        if gate is not None and gate.refusal is not None:
            raise gate.refusal
        if gate is None or not gate.pending:
            return await tenant_read(pool, workspace_id, statements)
        results = await tenant_read(pool, workspace_id, [gate.fold.statement(gate.claimed), *statements])
        gate.settle(results[0][0])
        return results[1:]

    return read
