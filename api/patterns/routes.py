"""The Patterns resource: the detector's groups of issues, their members with how each matched, frequency, edits
and merges; and, on issues, the similar issues the detector found. Reads come from the `patterns` read model."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from adapters.postgres import tenant_transaction
from api.core.auth import requires
from api.core.conditional import STALE, etag_for, expected_version
from api.core.consistency import settle
from api.core.deps import provide_caller, read_one
from api.core.errors import error_responses, not_found, validation_error
from api.core.pagination import (
    Cursor,
    Limit,
    Page,
    SortParam,
    cursor_key,
    offset_of,
    offset_page,
    parse_choices,
    parse_sort,
    sort_spec,
)
from api.patterns import schemas
from commands.patterns import PatternCommands
from commands.runner import Result
from domain.ids import canonical, render
from domain.patterns.events import PatternStatus
from domain.patterns.pattern import PatternEdit
from projections.issues.projector import NAME as ISSUES_PROJECTION
from projections.patterns import queries
from projections.patterns.projector import NAME as PATTERNS_PROJECTION

SORTS = set(queries.SORT_COLUMNS)
WINDOWS = {"7d": 7, "30d": 30, "90d": 90}
PATTERN = ResponseSpec(queries.PatternView, description="The pattern; `ETag` is its version", generate_examples=False)
CHANGED = {**error_responses(e409="conflict: the pattern changed concurrently; re-read and retry", e412=STALE),
           **error_responses(e422="invalid_transition: a merged pattern is read-only")}
MEMBERS_ORDER = "-linked_at"
"""The members' one order (most recent first): what their cursors are bound to."""
PatternIdPath = FromPath[str]


def pattern_ref(pattern_id: str) -> str:
    public = canonical("pat", pattern_id)
    if public is None:
        raise not_found("pattern", pattern_id)
    return public


async def _pattern(request: Request[Any, Any, Any], pattern_id: str) -> queries.PatternView:
    return await read_one(request, "pattern", pattern_id, queries.get_pattern)


class PatternsController(Controller):
    path = "/v1/patterns"
    tags = ("Patterns",)

    @get("/", guards=[requires("patterns:read")])
    async def list_patterns(
        self, request: Request[Any, Any, Any], limit: Limit = 25, cursor: Cursor = None, sort: SortParam = None,
        status: Annotated[str | None, QueryParameter(description="Comma-separated statuses")] = None,
        q: Annotated[str | None, QueryParameter(max_length=200, description="Full-text search of name and template")]
        = None,
        domain: Annotated[str | None, QueryParameter(max_length=120, description="fingerprint.domain")] = None,
        service: Annotated[str | None, QueryParameter(max_length=120, description="A member's service")] = None,
        risk_min: Annotated[int | None, QueryParameter(ge=0, le=100)] = None,
        risk_max: Annotated[int | None, QueryParameter(ge=0, le=100)] = None,
    ) -> Page[queries.PatternView]:
        """List patterns (merged ones left out): filters, sort `risk_score`, `issue_count`, `last_seen_at`,
        `created_at` (default -risk_score); the cursor carries an offset (risk moves with time)."""
        if risk_min is not None and risk_max is not None and risk_max < risk_min:
            raise validation_error("risk_max", "must be greater than or equal to risk_min")
        statuses = parse_choices("status", status, [s.value for s in PatternStatus])
        field, descending = parse_sort(sort, SORTS, "-risk_score")
        key, order = cursor_key(request), sort_spec(field, descending)
        offset = offset_of(key, cursor, order)
        filters = queries.PatternFilters(status=statuses, q=q or None, domain=domain, service=service,
                                         risk_min=risk_min, risk_max=risk_max)
        caller = provide_caller(request)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            rows, total = await queries.list_patterns(conn, caller.workspace_id, filters, sort=field,
                                                      descending=descending, limit=limit, offset=offset)
        return offset_page(rows, offset=offset, total=total, key=key, sort=order)

    @post("/", guards=[requires("patterns:write")], status_code=201,
          responses=error_responses(e404="not_found: an issue of issue_ids does not exist",
                                    e409="conflict: changed concurrently; retry"))
    async def create_pattern(self, request: Request[Any, Any, Any], data: JSONBody[schemas.CreatePatternRequest]
                             ) -> Response[queries.PatternView]:
        """Create a pattern by hand; `issue_ids` are linked to it (each leaves its previous pattern). It shows
        the `risk_score` and `confidence` it was given until it has members; then they are computed."""
        issue_ids = []
        for issue_id in data.issue_ids:
            public = canonical("iss", issue_id)
            if public is None:
                raise not_found("issue", issue_id)
            issue_ids.append(public)
        commands: PatternCommands = request.app.state.pattern_commands
        accepted = await commands.create(
            provide_caller(request), name=data.name, status=PatternStatus(data.status.value),
            fingerprint=data.fingerprint or {}, tags=list(data.tags), issue_ids=issue_ids,
            risk_score=data.risk_score, confidence=data.confidence)
        public_id = render("pat", accepted.stream_id)
        response = await self._answer(request, public_id, accepted)
        response.status_code = 201
        response.headers["Location"] = f"/v1/patterns/{public_id}"
        return response

    @get("/{pattern_id:str}", guards=[requires("patterns:read")], responses={200: PATTERN})
    async def get_pattern(self, request: Request[Any, Any, Any], pattern_id: PatternIdPath
                          ) -> Response[queries.PatternView]:
        """Retrieve one pattern, with its version as ETag."""
        found = await _pattern(request, pattern_ref(pattern_id))
        return Response(found, headers={"ETag": etag_for(found.version)})

    @patch("/{pattern_id:str}", guards=[requires("patterns:write")], responses=CHANGED)
    async def update_pattern(self, request: Request[Any, Any, Any], pattern_id: PatternIdPath,
                             data: JSONBody[schemas.UpdatePatternRequest]) -> Response[queries.PatternView]:
        """Rename, retag or set the status of a pattern; If-Match with a stale ETag is 412."""
        public_id = pattern_ref(pattern_id)
        edit = PatternEdit(name=data.name, tags=data.tags,
                           status=PatternStatus(data.status.value) if isinstance(data.status, str) else data.status)
        commands: PatternCommands = request.app.state.pattern_commands
        accepted = await commands.update(public_id, edit, provide_caller(request), expected_version(request))
        return await self._answer(request, public_id, accepted)

    @post("/{pattern_id:str}/merge", guards=[requires("patterns:write")], status_code=200,
          responses={**CHANGED, **error_responses(e400="validation_error: source_pattern_id is this pattern")})
    async def merge_pattern(self, request: Request[Any, Any, Any], pattern_id: PatternIdPath,
                            data: JSONBody[schemas.MergePatternRequest]) -> Response[queries.PatternView]:
        """Merge another pattern into this one: its issues move here, and the detector sends issues that would
        have joined it here from now on (a must-link)."""
        public_id = pattern_ref(pattern_id)
        source = canonical("pat", data.source_pattern_id)
        if source is None:
            raise not_found("pattern", data.source_pattern_id)
        if source == public_id:
            raise validation_error("source_pattern_id", "must differ from the target pattern")
        commands: PatternCommands = request.app.state.pattern_commands
        accepted = await commands.merge(public_id, source, provide_caller(request))
        return await self._answer(request, public_id, accepted)

    async def _answer(self, request: Request[Any, Any, Any], public_id: str, accepted: Result
                      ) -> Response[queries.PatternView]:
        headers = await settle(request.app.state, (PATTERNS_PROJECTION, accepted.position))
        found = await _pattern(request, public_id)
        return Response(found, headers={**headers, "ETag": etag_for(accepted.version)})

    @get("/{pattern_id:str}/members", guards=[requires("patterns:read")])
    async def list_pattern_members(self, request: Request[Any, Any, Any], pattern_id: PatternIdPath,
                                   limit: Limit = 25, cursor: Cursor = None) -> Page[queries.Member]:
        """The pattern's issues, most recent first, each with its `similarity` and `match_method`."""
        public_id = pattern_ref(pattern_id)
        key = cursor_key(request)
        offset = offset_of(key, cursor, MEMBERS_ORDER)
        await _pattern(request, public_id)
        caller = provide_caller(request)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            rows, total = await queries.list_members(conn, caller.workspace_id, public_id, limit=limit,
                                                     offset=offset)
        return offset_page(rows, offset=offset, total=total, key=key, sort=MEMBERS_ORDER)

    @get("/{pattern_id:str}/frequency", guards=[requires("patterns:read")])
    async def get_pattern_frequency(
        self, request: Request[Any, Any, Any], pattern_id: PatternIdPath,
        window: Annotated[str, QueryParameter(description="7d, 30d or 90d")] = "30d",
    ) -> schemas.Frequency:
        """Daily counts of the pattern's issues (by first seen, UTC) over the window, zeros included."""
        days = WINDOWS.get(window)
        if days is None:
            raise validation_error("window", "must be one of 7d, 30d, 90d")
        public_id = pattern_ref(pattern_id)
        await _pattern(request, public_id)
        caller = provide_caller(request)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            counts = await queries.frequency(conn, caller.workspace_id, public_id, days)
        return schemas.Frequency(pattern_id=public_id, window=window, total=sum(c.count for c in counts),
                                 data=counts)


class IssueAnalysisController(Controller):
    path = "/v1/issues"
    tags = ("Issues",)

    @get("/{issue_id:str}/similar", guards=[requires("issues:read")])
    async def list_similar_issues(
        self, request: Request[Any, Any, Any], issue_id: FromPath[str],
        limit: Annotated[int, QueryParameter(ge=1, le=5, description="How many (default 3)")] = 3,
        earlier_only: Annotated[bool, QueryParameter(description="Only issues opened before this one")] = False,
    ) -> list[queries.SimilarIssue]:
        """The issues most similar to this one, best first, each with `similarity` (0–1, TF-IDF cosine), as the
        detector found them when each was created: a suggestion, never an automatic link."""
        public_id = canonical("iss", issue_id)
        if public_id is None:
            raise not_found("issue", issue_id)
        caller = provide_caller(request)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            cur = await conn.execute("SELECT 1 FROM issues WHERE workspace_id = %s AND id = %s",
                                     (caller.workspace_id, public_id))
            if await cur.fetchone() is None:
                raise not_found("issue", issue_id)
            return await queries.similar_issues(conn, caller.workspace_id, public_id, earlier_only=earlier_only,
                                                limit=limit)

    @post("/{issue_id:str}/reanalyze", guards=[requires("issues:write")], status_code=202,
          responses=error_responses(e409="conflict: changed concurrently; retry"))
    async def reanalyze_issue(self, request: Request[Any, Any, Any], issue_id: FromPath[str],
                              data: JSONBody[schemas.ReanalyzeRequest]) -> Response[schemas.ReanalysisAccepted]:
        """Run the grouping again for this issue (asynchronously, by the pattern detector): its `stage` is
        `analyzing` from this answer until the detector records its analysis; it moves to another pattern only if
        the answer changed, e.g. after merges or unlinks."""
        public_id = canonical("iss", issue_id)
        if public_id is None:
            raise not_found("issue", issue_id)
        commands: PatternCommands = request.app.state.pattern_commands
        accepted = await commands.reanalyze(public_id, data.tier.value, provide_caller(request))
        headers = await settle(request.app.state, (ISSUES_PROJECTION, accepted.position))
        return Response(schemas.ReanalysisAccepted(issue_id=public_id, tier=data.tier.value, status="queued"),
                        status_code=202, headers=headers)
