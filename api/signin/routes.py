"""Sign-in: exchange a Clerk session token for Causeloop tokens, and rotate the refresh token.

Exchange: verify the Clerk token (one JWKS verifier: Clerk's, or the development issuer's), resolve the user
by Clerk `sub` then by `email` (linking the Clerk id on first sign-in), pick the workspace, check the second
factor, start a session (a refresh-token family) and mint an access token bound to it (`sid`, `amr`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import JSONBody
from psycopg_pool import AsyncConnectionPool

from adapters.clerk import ClerkClaims, ClerkVerifier, InvalidSubjectToken, JwksUnavailable
from adapters.dev_issuer import DevIssuer
from adapters.postgres import AsyncConn, tenant_transaction
from adapters.settings import Settings
from adapters.tokens import USER_TOKEN_TTL, mint_access_token
from api.core.auth import PUBLIC
from api.core.client_ip import client_ip
from api.core.consistency import settle
from api.core.errors import ApiError, error_responses
from api.core.principals import workspace_is_open
from api.core.request_id import request_id
from api.signin import schemas
from api.signin.mfa_routes import second_factor
from commands.caller import Caller
from commands.identity import user_stream
from commands.members import Joined, MemberCommands, joined_of
from commands.signin import REFRESH_PREFIX, RefreshRejected, SignInCommands, refresh_hash, session_of
from domain.errors import InvalidValue
from domain.events import Actor, ActorKind
from domain.identity.errors import Offboarded
from domain.identity.roles import Role, scopes_for
from domain.identity.user import ExternalIdentityConflict, clean_email
from domain.ids import UserId, WorkspaceId, canonical, render
from projections.identity import queries as identity
from projections.identity.projector import NAME as IDENTITY_PROJECTION
from projections.sessions import queries as session_queries
from projections.sessions.projector import NAME as SESSIONS_PROJECTION

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
INVALID_GRANT = "subject_token is invalid or could not be verified"
MEMBERSHIP_ENDED = "membership_ended"


def _forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def _offboarded() -> ApiError:
    """Sign-in into an offboarded workspace: refused like any token of it, before anything is written."""
    return ApiError(401, "unauthorized", "This workspace is offboarded and accepts no sign-in",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _refresh_refused() -> ApiError:
    return ApiError(401, "unauthorized", "The refresh token is invalid, expired or revoked; sign in again",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def _verify(verifier: ClerkVerifier | None, token: str) -> ClerkClaims:
    if verifier is None:
        raise ApiError(503, "service_unavailable", "Sign-in is not configured on this server (CLERK_JWKS_URL)")
    try:
        return await asyncio.to_thread(verifier.verify, token)
    except InvalidSubjectToken:
        raise ApiError(401, "invalid_grant", INVALID_GRANT) from None
    except JwksUnavailable:
        raise ApiError(503, "service_unavailable", "The identity provider's keys could not be fetched; retry") \
            from None


async def _resolve_user(pool: AsyncConnectionPool[AsyncConn], claims: ClerkClaims) -> identity.UserRow:
    """By Clerk id, then by email. An unknown identity is refused everywhere (no just-in-time users)."""
    async with tenant_transaction(pool, "") as conn:
        user = await identity.user_by_external_id(conn, claims.sub)
        if user is None and claims.email is not None:
            user = await identity.user_by_email(conn, claims.email)
    if user is None:
        raise _forbidden("No Causeloop user matches this identity; ask a workspace admin for an invitation")
    if user.clerk_user_id not in (None, claims.sub):
        raise _forbidden("This email is linked to another sign-in identity")
    return user


async def _membership(state: State, user_id: str, workspace_id: str | None) -> identity.MembershipRow:
    """`workspace_id`'s active membership, else the oldest active membership of a workspace still open (403: none
    at all; 401: only offboarded ones, or `workspace_id` is offboarded)."""
    if workspace_id is not None:
        workspace_id = canonical("ws", workspace_id) or workspace_id
        async with tenant_transaction(state.read_pool, workspace_id) as conn:
            member = await identity.membership(conn, workspace_id, user_id)
        if member is None or member.status != "active":
            raise _forbidden(f"You are not an active member of workspace {workspace_id}")
        memberships = [member]
    else:
        async with tenant_transaction(state.read_pool, "") as conn:
            memberships = await identity.workspaces_of_user(conn, user_id)
        if not memberships:
            raise _forbidden("You are not an active member of any workspace")
    for member in memberships:
        if await workspace_is_open(state, member.workspace_id):
            return member
    raise _offboarded()


def _caller(request: Request[Any, Any, Any], workspace_id: str, user_id: str) -> Caller:
    return Caller(workspace_id=WorkspaceId(workspace_id), actor=Actor(kind=ActorKind.USER, id=user_id),
                  correlation_id=request_id(request.scope), client_ip=client_ip(request.scope))


def _tokens(settings: Settings, member: identity.MembershipRow | Joined, session_id: str, refresh_token: str,
            mfa: bool) -> schemas.TokenResponse:
    scopes = scopes_for(Role(member.role))
    access = mint_access_token(settings, subject=member.user_id, workspace_id=member.workspace_id, role=member.role,
                               scopes=scopes, session_id=session_id, mfa=mfa)
    return schemas.TokenResponse(access_token=access, refresh_token=refresh_token, token_type="bearer",
                                 expires_in=int(USER_TOKEN_TTL.total_seconds()), scope=" ".join(sorted(scopes)),
                                 workspace_id=member.workspace_id)


async def _settle(state: State, *waits: tuple[str, int]) -> dict[str, str]:
    """Read-your-writes; token answers are never cached."""
    return {**NO_STORE, **await settle(state, *waits)}


@post("/v1/auth/exchange", opt=PUBLIC, status_code=200, tags=["Auth"], security=[],
      responses=schemas.EXCHANGE_ERRORS)
async def exchange_session_token(request: Request[Any, Any, Any], state: State,
                   data: JSONBody[schemas.ExchangeRequest]) -> Response[schemas.TokenResponse]:
    """Exchange a Clerk session token for a Causeloop access token (72 h) and a refresh token.

    With `invitation_token`, a person invited by email gets in even before having a user or a membership:
    the invitation is accepted for the token's verified email and the tokens are for its workspace."""
    claims = await _verify(state.clerk_verifier, data.subject_token)
    if data.invitation_token is not None:
        return await _exchange_invited(request, state, data, data.invitation_token, claims)
    user = await _resolve_user(state.read_pool, claims)
    member = await _membership(state, user.id, data.workspace_id)
    caller = _caller(request, member.workspace_id, user.id)
    commands: SignInCommands = state.signin_commands
    try:
        linked = (await commands.link_identity(user.id, claims.sub, caller)).position \
            if user.clerk_user_id is None else 0
    except ExternalIdentityConflict:
        raise _forbidden("This email is linked to another sign-in identity") from None
    mfa = await second_factor(state, user.id, data.mfa_code)
    started = await commands.start_session(UserId(user.id), mfa=mfa, caller=caller)
    headers = await _settle(state, (IDENTITY_PROJECTION, linked), (SESSIONS_PROJECTION, started.position))
    return Response(_tokens(state.settings, member, render("ses", started.stream_id), started.revealed or "", mfa),
                    headers=headers)


async def _exchange_invited(request: Request[Any, Any, Any], state: State, data: schemas.ExchangeRequest,
                            invitation_token: str, claims: ClerkClaims) -> Response[schemas.TokenResponse]:
    """How an invitee gets in without a membership (or a user) yet: the invitation addressed to the verified
    email is accepted in the same append that registers the user and links the Clerk id, then a session starts."""
    try:
        email = clean_email(claims.email or "")
    except InvalidValue:
        raise _forbidden("The sign-in token carries no usable email to match the invitation against") from None
    async with tenant_transaction(state.read_pool, "") as conn:
        linked = await identity.user_by_external_id(conn, claims.sub)
    if linked is not None and linked.email != email:
        raise _forbidden("This sign-in identity is linked to another email")
    user_id = UserId(render("usr", user_stream(email)))
    mfa = await second_factor(state, user_id, data.mfa_code)
    workspace_id = None if data.workspace_id is None else canonical("ws", data.workspace_id) or data.workspace_id
    members: MemberCommands = state.member_commands
    try:
        joined = joined_of(await members.join_invited(invitation_token, email=email, clerk_user_id=claims.sub,
                                                      workspace_id=workspace_id,
                                                      caller=_caller(request, workspace_id or "", user_id)))
    except ExternalIdentityConflict:
        raise _forbidden("This email is linked to another sign-in identity") from None
    except Offboarded:
        raise _offboarded() from None
    signin: SignInCommands = state.signin_commands
    started = await signin.start_session(joined.user_id, mfa=mfa,
                                         caller=_caller(request, joined.workspace_id, joined.user_id))
    headers = await _settle(state, (IDENTITY_PROJECTION, joined.position), (SESSIONS_PROJECTION, started.position))
    return Response(_tokens(state.settings, joined, render("ses", started.stream_id), started.revealed or "", mfa),
                    headers=headers)


@post("/v1/auth/refresh", opt=PUBLIC, status_code=200, tags=["Auth"], security=[],
      responses=schemas.REFRESH_ERRORS)
async def refresh_tokens(request: Request[Any, Any, Any], state: State,
                  data: JSONBody[schemas.RefreshRequest]) -> Response[schemas.TokenResponse]:
    """Rotate a refresh token: new access and refresh tokens. Re-using a rotated one revokes its whole family."""
    if not data.refresh_token.startswith(REFRESH_PREFIX):
        raise _refresh_refused()
    async with tenant_transaction(state.read_pool, "") as conn:
        ref = await session_queries.session_by_refresh_hash(conn, refresh_hash(data.refresh_token))
    if ref is None:
        raise _refresh_refused()
    if not await workspace_is_open(state, ref.workspace_id):
        raise _offboarded()  # nothing is written: the family stays as it was, in a workspace that accepts no token
    commands: SignInCommands = state.signin_commands
    caller = _caller(request, ref.workspace_id, ref.user_id)
    async with tenant_transaction(state.read_pool, ref.workspace_id) as conn:
        member = await identity.membership(conn, ref.workspace_id, ref.user_id)
    if member is None or member.status != "active":
        revoked = await commands.revoke(ref.session_id, MEMBERSHIP_ENDED, caller)
        await _settle(state, (SESSIONS_PROJECTION, revoked.position))
        raise _refresh_refused()
    try:
        rotated = await commands.rotate(ref.session_id, data.refresh_token, caller)
    except RefreshRejected as exc:
        await _settle(state, (SESSIONS_PROJECTION, exc.position))  # the revocation is effective at once
        raise _refresh_refused() from None
    headers = await _settle(state, (SESSIONS_PROJECTION, rotated.position))
    body = _tokens(state.settings, member, ref.session_id, rotated.revealed or "", session_of(rotated).mfa)
    return Response(body, headers=headers)


@get("/.well-known/causeloop-dev-jwks.json", sync_to_thread=True, tags=["Auth"],
     responses=error_responses(e404="not_found: in production, or when CLERK_JWKS_URL is set"))
def get_dev_jwks(state: State) -> dict[str, Any]:
    """The development issuer's public keys (the key set exchange verifies against when CLERK_JWKS_URL is unset).

    404 in production and whenever CLERK_JWKS_URL is set: then Clerk's key set is the only one trusted.
    """
    settings: Settings = state.settings
    if settings.is_production or settings.clerk_jwks_url:
        raise ApiError(404, "not_found", "No development key set on this server")
    document: dict[str, Any] = json.loads(DevIssuer(settings.data_dir).ensure_jwks().read_text())
    return document
