"""The audit log: read-only routes over the `audit` projection (no route can create, edit or delete an entry)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_transaction
from api.audit import csv_export, schemas
from api.core.auth import requires
from api.core.deps import provide_caller, provide_read_pool
from api.core.errors import validation_error
from api.core.pagination import Cursor, Limit, Page, cursor_key, decode_cursor, page_of
from commands.caller import Caller
from projections.audit import queries
from projections.audit.actions import CATEGORIES

ReadPool = NamedDependency[AsyncConnectionPool[AsyncConn]]
Who = NamedDependency[Caller]
SORT = "-seq"
EXPORT_PAGE = 1000
CSV_MEDIA_TYPE = "text/csv"  # Litestar appends "; charset=utf-8" to text types

Q = Annotated[str | None, QueryParameter(max_length=200, description="Full text over action, actor, target and "
                                         "metadata; also matches the actor's name")]
From = Annotated[str | None, QueryParameter(name="from", description="ISO date or datetime (inclusive)")]
To = Annotated[str | None, QueryParameter(description="ISO datetime (inclusive), or an ISO date: that whole day")]
Action = Annotated[str | None, QueryParameter(max_length=200, description="Exact action (`member.invited`) or a "
                                              "prefix ending in `.` (`member.`)")]
Category = Annotated[str | None, QueryParameter(description=f"One of {', '.join(CATEGORIES)}")]


def _moment(field: str, value: str | None, *, end_of_day: bool) -> datetime | None:
    """An ISO date or datetime as an aware UTC bound; a date `to` means up to the end of that day."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1) if end_of_day else day, time(), UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise validation_error(field, "must be an ISO 8601 date (2026-01-01) or datetime") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment + timedelta(microseconds=1) if end_of_day else moment


def _filters(q: str | None, from_: str | None, to: str | None, actor_id: str | None, action: str | None,
             category: str | None) -> queries.AuditFilters:
    if category is not None and category not in CATEGORIES:
        raise validation_error("category", f"must be one of {', '.join(CATEGORIES)}")
    since, until = _moment("from", from_, end_of_day=False), _moment("to", to, end_of_day=True)
    if since is not None and until is not None and until <= since:
        raise validation_error("to", "must not be before from")
    prefix = action.rstrip("*") if action and action.endswith((".", "*")) else None
    return queries.AuditFilters(q=q or None, since=since, until=until, actor_id=actor_id or None,
                                action=None if prefix is not None else action or None,
                                action_prefix=prefix, category=category)


class AuditLogController(Controller):
    path = "/v1/audit-log"
    tags = ("Audit log",)
    dependencies = {  # noqa: RUF012  (Litestar reads this class attribute)
        "read_pool": Provide(provide_read_pool, sync_to_thread=False),
        "caller": Provide(provide_caller, sync_to_thread=False),
    }

    @get("/", guards=[requires("audit:read")], description=(
        "Newest first, cursor-paginated. With `Accept: text/csv` the answer is `text/csv; charset=utf-8` "
        "(`Content-Disposition: attachment`): a header row and every matching entry (limit and cursor ignored)."))
    async def list_audit_log(
        self, request: Request[Any, Any, Any], read_pool: ReadPool, caller: Who,
        limit: Limit = 25, cursor: Cursor = None, q: Q = None, from_: From = None, to: To = None,
        actor_id: FromQuery[str | None] = None, action: Action = None, category: Category = None,
    ) -> Page[schemas.AuditEntry]:
        """List audit entries, newest first; `Accept: text/csv` downloads every matching entry as CSV."""
        filters = _filters(q, from_, to, actor_id, action, category)
        if request.accept.best_match(["application/json", "text/csv"], "application/json") == "text/csv":
            return _csv(read_pool, caller.workspace_id, filters)  # type: ignore[return-value]
        key = cursor_key(request)
        before = int(str(decode_cursor(key, cursor, SORT)["v"])) if cursor else None
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            rows, total = await queries.list_entries(conn, caller.workspace_id, filters, limit=limit + 1,
                                                     before_seq=before)
        return page_of([schemas.entry_of(row) for row in rows], limit=limit, total=total, key=key, sort=SORT,
                       position=lambda entry: {"v": entry.seq})

    @get("/verify", guards=[requires("audit:read")], description=(
        "hash = sha256_hex(prev_hash + canonical JSON of the entry), from 64 zeros (docs/guides.md, The audit log). "
        "`ok` says the stored chain is intact; `complete` is false while some of the workspace's events are parked "
        "instead of chained (`parked_positions` lists them): an intact chain can still miss them."))
    async def verify_audit_log(self, read_pool: ReadPool, caller: Who) -> schemas.ChainVerdict:
        """Recompute the workspace's hash chain (ok, or the first seq where it breaks) and say whether it lacks
        parked events."""
        async with tenant_transaction(read_pool, caller.workspace_id) as conn:
            verdict = await queries.verify_chain(conn, caller.workspace_id)
            parked = await queries.missing_from_chain(conn, caller.workspace_id)
        return schemas.ChainVerdict(ok=verdict.ok, entries=verdict.entries, first_seq=verdict.first_seq,
                                    last_seq=verdict.last_seq, head_hash=verdict.head_hash,
                                    broken_at=verdict.broken_at, complete=not parked, parked_positions=parked)


class _CsvStream(Stream):
    """A Stream whose own media type wins over the handler's JSON default (Litestar 2.25 lets the handler's win,
    contrary to its docstring)."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        return super().to_asgi_response(*args, **{**kwargs, "media_type": self.media_type})


def _csv(read_pool: AsyncConnectionPool[AsyncConn], workspace_id: str, filters: queries.AuditFilters) -> Response[Any]:
    """Every matching entry, newest first, a page at a time: memory stays flat however long the log is."""

    async def rows() -> AsyncIterator[str]:
        yield csv_export.lines([], header=True)
        before: int | None = None
        while True:
            async with tenant_transaction(read_pool, workspace_id) as conn:
                page = await queries.page_after(conn, workspace_id, filters, limit=EXPORT_PAGE, before_seq=before)
            if page:
                yield csv_export.lines(page)
            if len(page) < EXPORT_PAGE:
                return
            before = page[-1].seq

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return _CsvStream(rows(), media_type=CSV_MEDIA_TYPE,
                  headers={"Content-Disposition": f'attachment; filename="audit-log-{stamp}.csv"'})
