"""The Issues resource: commands go to the event store, reads come from the `issues` projection."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import AsyncConn, tenant_read, tenant_transaction
from api.core.auth import requires
from api.core.conditional import STALE, etag_for, expected_version
from api.core.consistency import settle as settle_on
from api.core.deps import provide_caller
from api.core.errors import error_responses, not_found, validation_error
from api.core.input_policy import QueryInstant, query_instant
from api.core.pagination import (
    Cursor,
    Limit,
    Page,
    SortParam,
    cursor_key,
    decode_cursor,
    encoded_page,
    page_of,
    parse_choices,
    parse_pattern_filter,
    parse_sort,
    sort_spec,
    split_list,
)
from api.issues import schemas
from commands.caller import Caller
from commands.errors import NotFound
from commands.issues import BulkOp, IssueCommands, OpenIssue, comment_id_of, issue_events, issue_id_of
from commands.runner import Result
from domain.ids import PatternId, canonical
from domain.issues.events import Stage, Status
from domain.issues.issue import IssueEdit
from projections.issues import queries
from projections.issues.projector import NAME as ISSUES_PROJECTION
from projections.issues.view import IssueView, fold

SORTS = {"created_at", "updated_at", "risk_score", "severity"}
ISSUE = ResponseSpec(IssueView, description="The issue; `ETag` is its version", generate_examples=False)
REOPENED = ResponseSpec(IssueView, generate_examples=False,
                        description="An issue with this source + external_id existed: it was updated")
CONCURRENT = error_responses(e409="conflict: the issue changed concurrently; re-read and retry")
CHANGED = {**CONCURRENT, **error_responses(e412=STALE)}
EDITED = {**CHANGED, **error_responses(e422="invalid_transition: a closed issue changes only through reopen")}
ISSUE_PAGE = ResponseSpec(Page[IssueView], description="A page of issues", generate_examples=False)
"""Reads send the issues' stored JSON documents as they are (`Response[bytes]`); these name their schema."""
IssueIdPath = FromPath[str]


@dataclass(frozen=True, slots=True)
class IssuesContext:
    """What an issues route works with, as ONE dependency: Litestar resolves sibling dependencies concurrently,
    a task each, which cost more per request than these lookups (about 5% of the API's CPU on POST)."""

    caller: Caller
    commands: IssueCommands
    read_pool: AsyncConnectionPool[AsyncConn]
    state: State


def provide_issues_context(request: Request[Any, Any, Any]) -> IssuesContext:
    state = request.app.state
    return IssuesContext(caller=provide_caller(request), commands=state.issue_commands, read_pool=state.read_pool,
                         state=state)


Ctx = NamedDependency[IssuesContext]


async def settle(ctx: IssuesContext, accepted: Result) -> dict[str, str]:
    """Read-your-writes: hold the 2xx until the projection serving the next GET has the write."""
    return {"ETag": etag_for(accepted.version), **await settle_on(ctx.state, (ISSUES_PROJECTION, accepted.position))}


def issue_ref(issue_id: str) -> str:
    """Malformed ids and ids of another type are simply not found (never a 500)."""
    public = canonical("iss", issue_id)
    if public is None:
        raise not_found("issue", issue_id)
    return public


def view_of(accepted: Result) -> IssueView:
    view = fold(None, issue_events(accepted))
    assert view is not None
    return view


def _severities(value: str | None) -> list[str] | None:
    parts = split_list(value)
    if parts is None:
        return None
    try:
        return [schemas.SeverityInput(part).canonical().value for part in parts]
    except ValueError:
        raise validation_error("severity", "must be one of critical, high, medium, low, p1–p4") from None


class IssuesController(Controller):
    path = "/v1/issues"
    tags = ("Issues",)
    dependencies = {"ctx": Provide(provide_issues_context, sync_to_thread=False)}  # noqa: RUF012

    @post("/", guards=[requires("issues:write")], status_code=201,
          responses={200: REOPENED, **CONCURRENT})
    async def create_issue(self, data: JSONBody[schemas.OpenIssueRequest], ctx: Ctx) -> Response[IssueView]:
        """Open an issue (same source + external_id updates the existing one: 200)."""
        command = OpenIssue(**{**msgspec.structs.asdict(data), "severity": data.severity.canonical()})
        accepted = await ctx.commands.open_issue(command, ctx.caller)
        headers = await settle(ctx, accepted)
        headers["Location"] = f"/v1/issues/{issue_id_of(accepted)}"
        return Response(view_of(accepted), status_code=201 if accepted.created else 200, headers=headers)

    @get("/", guards=[requires("issues:read")], responses={200: ISSUE_PAGE})
    async def list_issues(
        self, request: Request[Any, Any, Any], ctx: Ctx,
        limit: Limit = 25, cursor: Cursor = None, sort: SortParam = None,
        status: FromQuery[str | None] = None, severity: FromQuery[str | None] = None,
        pattern_id: FromQuery[str | None] = None,
        q: Annotated[str | None, QueryParameter(max_length=200, description="Ranked full-text search")] = None,
        source: FromQuery[str | None] = None, team: FromQuery[str | None] = None,
        stage: FromQuery[str | None] = None, assignee_id: FromQuery[str | None] = None,
        risk_min: Annotated[int | None, QueryParameter(ge=0, le=100)] = None,
        risk_max: Annotated[int | None, QueryParameter(ge=0, le=100)] = None,
        created_after: QueryInstant = None, created_before: QueryInstant = None,
    ) -> Response[bytes]:
        """List issues: filters, sort (default -created_at; relevance when q is given), cursor pagination."""
        if risk_min is not None and risk_max is not None and risk_max < risk_min:
            raise validation_error("risk_max", "must be greater than or equal to risk_min")
        field, descending = _sort(sort, q)
        filters = queries.IssueFilters(
            status=parse_choices("status", status, {s.value for s in Status}), severity=_severities(severity),
            stage=parse_choices("stage", stage, {s.value for s in Stage}),
            pattern_id=parse_pattern_filter(pattern_id), q=q or None,
            source=source, team=team, assignee_id=assignee_id, risk_min=risk_min, risk_max=risk_max,
            created_after=query_instant(created_after, "created_after"),
            created_before=query_instant(created_before, "created_before"))
        sort_token = sort_spec(field, descending)
        key = cursor_key(request)
        after = None
        if cursor:
            payload = decode_cursor(key, cursor, sort_token)
            after = queries.Keyset(payload["v"], str(payload["i"]))
        page = await queries.list_issues(
            functools.partial(tenant_read, ctx.read_pool, ctx.caller.workspace_id), ctx.caller.workspace_id,
            filters,
            sort=field, descending=descending, limit=limit + 1, after=after,
            rank_window=request.app.state.settings.search_rank_window)
        body = encoded_page(page.documents, limit=limit, total=page.total, key=key, sort=sort_token,
                            position=lambda index: {"v": page.keys[index].value, "i": page.keys[index].id})
        return Response(body, media_type=MediaType.JSON)

    @get("/{issue_id:str}", guards=[requires("issues:read")], responses={200: ISSUE})
    async def get_issue(self, issue_id: IssueIdPath, ctx: Ctx) -> Response[bytes]:
        """Retrieve one issue, with its version as ETag."""
        public_id = issue_ref(issue_id)
        async with tenant_transaction(ctx.read_pool, ctx.caller.workspace_id) as conn:
            found = await queries.get_document(conn, ctx.caller.workspace_id, public_id)
        if found is None:
            raise not_found("issue", issue_id)
        version, document = found
        return Response(document.encode(), media_type=MediaType.JSON, headers={"ETag": etag_for(version)})

    @patch("/{issue_id:str}", guards=[requires("issues:write")], responses=EDITED)
    async def update_issue(self, request: Request[Any, Any, Any], issue_id: IssueIdPath,
                           data: JSONBody[schemas.UpdateIssueRequest], ctx: Ctx) -> Response[IssueView]:
        """Update fields and/or status; If-Match with a stale ETag is 412."""
        fields = msgspec.structs.asdict(data)
        if data.severity is not msgspec.UNSET:
            fields["severity"] = data.severity.canonical()
        edit = IssueEdit(**fields)
        return await self._command(ctx, request, lambda expected: ctx.commands.edit_issue(
            issue_ref(issue_id), edit, ctx.caller, expected))

    @post("/{issue_id:str}/close", guards=[requires("issues:write")], status_code=200,
          responses=CHANGED)
    async def close_issue(self, request: Request[Any, Any, Any], issue_id: IssueIdPath,
                          ctx: Ctx) -> Response[IssueView]:
        """Close an issue (closing a closed issue is a no-op)."""
        return await self._command(ctx, request, lambda expected: ctx.commands.close_issue(
            issue_ref(issue_id), ctx.caller, expected))

    @post("/{issue_id:str}/reopen", guards=[requires("issues:write")], status_code=200,
          responses=CHANGED)
    async def reopen_issue(self, request: Request[Any, Any, Any], issue_id: IssueIdPath,
                           ctx: Ctx) -> Response[IssueView]:
        """Reopen an issue: back to `open`, `resolved_at` cleared."""
        return await self._command(ctx, request, lambda expected: ctx.commands.reopen_issue(
            issue_ref(issue_id), ctx.caller, expected))

    @post("/{issue_id:str}/link-pattern", guards=[requires("issues:write")], status_code=200, responses=CHANGED)
    async def link_issue_pattern(self, request: Request[Any, Any, Any], issue_id: IssueIdPath,
                           data: JSONBody[schemas.LinkPatternRequest], ctx: Ctx) -> Response[IssueView]:
        """Link the issue to a pattern (stage becomes pattern_found)."""
        pattern_id = PatternId(canonical("pat", data.pattern_id) or data.pattern_id)
        return await self._command(ctx, request, lambda expected: ctx.commands.link_pattern(
            issue_ref(issue_id), pattern_id, ctx.caller, expected))

    @post("/{issue_id:str}/unlink-pattern", guards=[requires("issues:write")], status_code=200, responses=CHANGED)
    async def unlink_issue_pattern(self, request: Request[Any, Any, Any], issue_id: IssueIdPath,
                             ctx: Ctx) -> Response[IssueView]:
        """Remove the issue's pattern link."""
        return await self._command(ctx, request, lambda expected: ctx.commands.unlink_pattern(
            issue_ref(issue_id), ctx.caller, expected))

    async def _command(self, ctx: IssuesContext, request: Request[Any, Any, Any],
                       command: Callable[[int | None], Awaitable[Result]]) -> Response[IssueView]:
        expected = expected_version(request)
        accepted = await command(expected)
        headers = await settle(ctx, accepted)
        return Response(view_of(accepted), headers=headers)

    @get("/{issue_id:str}/activity", guards=[requires("issues:read")])
    async def list_issue_activity(self, request: Request[Any, Any, Any], issue_id: IssueIdPath,
                       ctx: Ctx, limit: Limit = 25,
                       cursor: Cursor = None) -> Page[queries.Activity]:
        """The issue's history, newest first: one entry per event in its stream."""
        public_id = issue_ref(issue_id)
        key = cursor_key(request)
        before = int(str(decode_cursor(key, cursor, "-version")["v"])) if cursor else None
        async with tenant_transaction(ctx.read_pool, ctx.caller.workspace_id) as conn:
            if not await queries.issue_exists(conn, ctx.caller.workspace_id, public_id):
                raise not_found("issue", issue_id)
            entries = await queries.list_activity(conn, ctx.caller.workspace_id, public_id, limit=limit + 1,
                                                  before_version=before)
            total = await queries.count_activity(conn, ctx.caller.workspace_id, public_id)
        return page_of(entries, limit=limit, total=total, key=key, sort="-version",
                       position=lambda entry: {"v": entry.version})

    @post("/{issue_id:str}/comments", guards=[requires("issues:write")], status_code=201, responses=CONCURRENT)
    async def create_issue_comment(self, issue_id: IssueIdPath, data: JSONBody[schemas.CommentRequest],
                          ctx: Ctx) -> Response[queries.Comment]:
        """Comment on an issue (closed issues still take comments)."""
        accepted = await ctx.commands.comment_on_issue(issue_ref(issue_id), data.body, ctx.caller)
        headers = await settle(ctx, accepted)
        comment = accepted.stream[-1]
        body = queries.Comment(id=str(comment_id_of(accepted)), issue_id=issue_id_of(accepted),
                               author=msgspec.to_builtins(comment.actor), body=data.body,
                               created_at=comment.occurred_at)
        return Response(body, status_code=201, headers=headers)

    @get("/{issue_id:str}/comments", guards=[requires("issues:read")])
    async def list_issue_comments(self, request: Request[Any, Any, Any], issue_id: IssueIdPath,
                            ctx: Ctx, limit: Limit = 25,
                            cursor: Cursor = None) -> Page[queries.Comment]:
        """Comments on an issue, oldest first."""
        public_id = issue_ref(issue_id)
        key = cursor_key(request)
        after = None
        if cursor:
            payload = decode_cursor(key, cursor, "created_at")
            after = queries.Keyset(datetime.fromisoformat(str(payload["v"])), str(payload["i"]))
        async with tenant_transaction(ctx.read_pool, ctx.caller.workspace_id) as conn:
            if not await queries.issue_exists(conn, ctx.caller.workspace_id, public_id):
                raise not_found("issue", issue_id)
            comments, total = await queries.list_comments(conn, ctx.caller.workspace_id, public_id, limit=limit + 1,
                                                          after=after)
        return page_of(comments, limit=limit, total=total, key=key, sort="created_at",
                       position=lambda comment: {"v": comment.created_at.isoformat(), "i": comment.id})

    @post("/bulk", guards=[requires("issues:write")], status_code=200)
    async def bulk_update_issues(self, data: JSONBody[schemas.BulkRequest], ctx: Ctx) -> Response[schemas.BulkResponse]:
        """Apply one operation to up to 100 issues; each id succeeds or fails on its own."""
        value = _bulk_value(data)
        outcomes = await ctx.commands.bulk(data.ids, BulkOp(data.op.value), value, ctx.caller)
        results = [_bulk_result(outcome.id, outcome.result, outcome.error) for outcome in outcomes]
        headers = await settle_on(ctx.state, *((ISSUES_PROJECTION, o.result.position) for o in outcomes if o.result))
        return Response(schemas.BulkResponse(results=results), headers=headers)


def _sort(sort: str | None, q: str | None) -> tuple[str, bool]:
    """Relevance first when searching and no sort is asked for; otherwise the shared sort parser."""
    if sort is None and q:
        return "rank", True
    return parse_sort(sort, SORTS, "-created_at")


def _bulk_value(data: schemas.BulkRequest) -> str | None:
    """The op's value in canonical form; a value that does not fit the op is a 400 naming `value`."""
    value = data.value
    match data.op:
        case schemas.BulkOperation.SET_STATUS:
            result, ok = value, value in {s.value for s in Status}
        case schemas.BulkOperation.ASSIGN:
            result = canonical("usr", value) if value else None
            ok = value is None or result is not None
        case schemas.BulkOperation.SET_TEAM:
            result, ok = value, value is None or 0 < len(value) <= 120
        case schemas.BulkOperation.LINK_PATTERN:
            result = canonical("pat", value) if value else None
            ok = result is not None
    if not ok:
        raise validation_error("value", f"not a valid value for op {data.op.value}")
    return result


def _bulk_result(issue_id: str, accepted: Result | None, error: Exception | None) -> schemas.BulkResult:
    if accepted is not None:
        return schemas.BulkResult(id=issue_id, ok=True, version=accepted.version)
    code = "not_found" if isinstance(error, NotFound) else getattr(error, "code", "conflict")
    return schemas.BulkResult(id=issue_id, ok=False, error=schemas.BulkError(code=code, message=str(error)))
