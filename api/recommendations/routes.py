"""The Recommendations resource: fixes the recommendation worker proposed for recurring patterns from the shipped
knowledge base, their status, implementation steps, dismissal and verification (the proof window). Reads come from
the `recommendations` read model."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from adapters.postgres import tenant_transaction
from adapters.providers.http import ProviderError
from adapters.providers.tickets import Rejected
from adapters.secret_box import MasterKeyMissing, UndecryptableSecret
from api.core.auth import requires
from api.core.conditional import STALE, etag_for, expected_version
from api.core.consistency import settle
from api.core.deps import provide_caller, read_one
from api.core.errors import ApiError, error_responses, not_found
from api.core.pagination import (
    Cursor,
    Limit,
    Page,
    SortParam,
    cursor_key,
    offset_of,
    offset_page,
    parse_choices,
    parse_pattern_filter,
    parse_sort,
    sort_spec,
)
from api.recommendations import schemas
from commands.recommendations import RecommendationCommands
from commands.runner import Result
from commands.tickets import TicketCommands
from domain.ids import canonical
from domain.recommendations.events import RecommendationStatus
from domain.recommendations.knowledge import Impact, RecommendationType
from projections.connectors import queries as connector_queries
from projections.patterns.projector import NAME as PATTERNS_PROJECTION
from projections.recommendations import queries
from projections.recommendations.projector import NAME as RECOMMENDATIONS_PROJECTION

SORTS = set(queries.SORT_COLUMNS)
RECOMMENDATION = ResponseSpec(queries.RecommendationView, description="The recommendation; `ETag` is its version",
                              generate_examples=False)
CHANGED = {**error_responses(e409="conflict: the recommendation changed concurrently; re-read and retry",
                             e412=STALE),
           **error_responses(e422="invalid_transition: not allowed from the current status")}
PUSHED = {
    200: ResponseSpec(queries.RecommendationView, generate_examples=False,
                      description="The recommendation already had a ticket in this tracker and project: it is "
                                  "answered as is, nothing is created"),
    201: ResponseSpec(queries.RecommendationView, generate_examples=False,
                      description="The ticket was created: `ticket` on the recommendation; `Location` is its URL"),
    **error_responses(
        e400="validation_error: `tracker` is not `jira` or `github`, or `project` is not written the tracker's way",
        e422="tracker_not_connected: no connected connector of that type with credentials; tracker_rejected: the "
             "tracker refused the ticket (unknown project, no `Task` issue type, issues switched off)",
        e502="provider_error: the tracker failed (`details.outcome`: `unauthorized`, `unreachable`, `rate_limited`, "
             "`provider_error`); nothing was recorded",
        e503="service_unavailable: CAUSELOOP_MASTER_KEY is not configured (production)"),
}
RecommendationIdPath = FromPath[str]


def recommendation_ref(recommendation_id: str) -> str:
    public = canonical("rec", recommendation_id)
    if public is None:
        raise not_found("recommendation", recommendation_id)
    return public


async def _recommendation(request: Request[Any, Any, Any], recommendation_id: str) -> queries.RecommendationView:
    return await read_one(request, "recommendation", recommendation_id, queries.get_recommendation)


class RecommendationsController(Controller):
    path = "/v1/recommendations"
    tags = ("Recommendations",)

    @get("/", guards=[requires("recommendations:read")])
    async def list_recommendations(
        self, request: Request[Any, Any, Any], limit: Limit = 25, cursor: Cursor = None, sort: SortParam = None,
        status: Annotated[str | None, QueryParameter(description="pending, in_progress, implemented, dismissed "
                                                     "(comma-separated, OR)")] = None,
        type: Annotated[str | None, QueryParameter(description="code_fix, config_change, process, monitoring "
                                                   "(comma-separated, OR)")] = None,
        impact: Annotated[str | None, QueryParameter(description="high, medium, quick_win (comma-separated, OR)")
                          ] = None,
        pattern_id: Annotated[str | None, QueryParameter(max_length=64, description="The source pattern (pat_…)")
                              ] = None,
    ) -> Page[queries.RecommendationView]:
        """List recommendations: filters `status`, `type`, `impact`, `pattern_id`; sort `rank` (default), `-rank`,
        `-created_at`, `-expected_loops_prevented`, `-updated_at`; the cursor carries an offset."""
        filters = queries.RecommendationFilters(
            status=parse_choices("status", status, {s.value for s in RecommendationStatus}),
            type=parse_choices("type", type, {t.value for t in RecommendationType}),
            impact=parse_choices("impact", impact, {i.value for i in Impact}),
            pattern_id=parse_pattern_filter(pattern_id))
        field, descending = parse_sort(sort, SORTS, "rank")
        key, order = cursor_key(request), sort_spec(field, descending)
        offset = offset_of(key, cursor, order)
        caller = provide_caller(request)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            rows, total = await queries.list_recommendations(conn, caller.workspace_id, filters, sort=field,
                                                             descending=descending, limit=limit, offset=offset)
        return offset_page(rows, offset=offset, total=total, key=key, sort=order)

    @get("/{recommendation_id:str}", guards=[requires("recommendations:read")], responses={200: RECOMMENDATION})
    async def get_recommendation(self, request: Request[Any, Any, Any], recommendation_id: RecommendationIdPath
                                 ) -> Response[queries.RecommendationView]:
        """Retrieve one recommendation (steps, verification), with its version as ETag."""
        found = await _recommendation(request, recommendation_ref(recommendation_id))
        return Response(found, headers={"ETag": etag_for(found.version)})

    @patch("/{recommendation_id:str}", guards=[requires("recommendations:write")], responses=CHANGED)
    async def update_recommendation(self, request: Request[Any, Any, Any], recommendation_id: RecommendationIdPath,
                                    data: JSONBody[schemas.UpdateRecommendationRequest]
                                    ) -> Response[queries.RecommendationView]:
        """Set the status (`pending → in_progress → implemented | dismissed`). `in_progress` moves the pattern to
        `mitigating`; `implemented` starts verification: the pattern is `watching` for the proof window."""
        public_id = recommendation_ref(recommendation_id)
        commands: RecommendationCommands = request.app.state.recommendation_commands
        accepted = await commands.set_status(public_id, RecommendationStatus(data.status.value),
                                             provide_caller(request), expected_version(request))
        return await self._answer(request, public_id, accepted)

    @patch("/{recommendation_id:str}/steps/{step_id:str}", guards=[requires("recommendations:write")],
           responses={**CHANGED, **error_responses(e400="validation_error: no such step")})
    async def update_recommendation_step(self, request: Request[Any, Any, Any],
                                         recommendation_id: RecommendationIdPath, step_id: FromPath[str],
                                         data: JSONBody[schemas.UpdateStepRequest]
                                         ) -> Response[queries.RecommendationView]:
        """Check off (or uncheck) one implementation step; progress is saved per step."""
        public_id = recommendation_ref(recommendation_id)
        commands: RecommendationCommands = request.app.state.recommendation_commands
        accepted = await commands.complete_step(public_id, step_id, data.completed, provide_caller(request),
                                                expected_version(request))
        return await self._answer(request, public_id, accepted)

    @post("/{recommendation_id:str}/dismiss", guards=[requires("recommendations:write")], status_code=200,
          responses=CHANGED)
    async def dismiss_recommendation(self, request: Request[Any, Any, Any], recommendation_id: RecommendationIdPath,
                                     data: JSONBody[schemas.DismissRequest]) -> Response[queries.RecommendationView]:
        """Dismiss a pending or in-progress recommendation, with an optional reason."""
        public_id = recommendation_ref(recommendation_id)
        commands: RecommendationCommands = request.app.state.recommendation_commands
        accepted = await commands.dismiss(public_id, data.reason, provide_caller(request), expected_version(request))
        return await self._answer(request, public_id, accepted)

    @post("/{recommendation_id:str}/push", guards=[requires("recommendations:write")], status_code=201,
          responses=PUSHED)
    async def push_recommendation(self, request: Request[Any, Any, Any], recommendation_id: RecommendationIdPath,
                                  data: JSONBody[schemas.PushRequest]) -> Response[queries.RecommendationView]:
        """Create a ticket for the recommendation in the workspace's issue tracker (`jira`: a Task in the project
        key; `github`: an issue in `owner/repo`) through that tracker's connector. Pushing again to the same
        tracker and project answers the existing ticket (200) and creates none."""
        public_id = recommendation_ref(recommendation_id)
        caller = provide_caller(request)
        async with tenant_transaction(request.app.state.read_pool, caller.workspace_id) as conn:
            candidates = await connector_queries.connector_ids_of_type(conn, caller.workspace_id, data.tracker)
        commands: TicketCommands = request.app.state.ticket_commands
        try:
            accepted, created = await commands.push(caller, public_id, data.tracker, data.project, candidates)
        except MasterKeyMissing:
            raise ApiError(503, "service_unavailable", "Connector credentials need CAUSELOOP_MASTER_KEY "
                                                       "(not configured)") from None
        except UndecryptableSecret:
            raise _provider_failed(data.tracker, "unauthorized", "the connector's stored credentials cannot be "
                                                                 "decrypted: set them again") from None
        except Rejected as exc:
            raise ApiError(422, "tracker_rejected", str(exc), {"tracker": data.tracker, "project": data.project}
                           ) from None
        except ProviderError as exc:
            raise _provider_failed(data.tracker, exc.outcome, str(exc)) from None
        response = await self._answer(request, public_id, accepted)
        response.status_code = 200
        if created and response.content.ticket is not None:
            response.status_code = 201
            response.headers["Location"] = response.content.ticket.url
        return response

    async def _answer(self, request: Request[Any, Any, Any], public_id: str, accepted: Result
                      ) -> Response[queries.RecommendationView]:
        headers = await settle(request.app.state, (RECOMMENDATIONS_PROJECTION, accepted.position),
                               (PATTERNS_PROJECTION, accepted.position))
        found = await _recommendation(request, public_id)
        return Response(found, headers={**headers, "ETag": etag_for(accepted.version)})


def _provider_failed(tracker: str, outcome: str, message: str) -> ApiError:
    """The tracker did not create the ticket (the outcomes of `POST /v1/connectors/{id}/test`)."""
    return ApiError(502, "provider_error", f"{tracker}: {message}", {"tracker": tracker, "outcome": outcome})
