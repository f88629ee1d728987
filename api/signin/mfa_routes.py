"""MFA for the signed-in user: enrol a TOTP secret, verify it to activate, remove it; and the sign-in second factor."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, post
from litestar.datastructures import State
from litestar.params import Body, JSONBody

from adapters import totp
from adapters.postgres import tenant_transaction
from adapters.secret_box import MasterKeyMissing
from adapters.tokens import Principal
from api.core.auth import authenticated
from api.core.consistency import settle
from api.core.deps import provide_caller
from api.core.errors import ApiError, error_responses
from api.core.idempotency import SECRET_RESPONSE
from api.signin import schemas
from api.signin.totp_attempts import check_totp, invalid_code
from commands.mfa import MfaCommands
from domain.ids import UserId
from domain.mfa.factor import FactorStatus, TotpFactor, is_active
from projections.identity import queries as identity
from projections.sessions.projector import NAME as SESSIONS_PROJECTION

USERS_ONLY = "forbidden: MFA is for users; this token belongs to a service account"


def _unavailable() -> ApiError:
    return ApiError(503, "service_unavailable", "MFA is not available: CAUSELOOP_MASTER_KEY is not configured")


def _secret(mfa: MfaCommands, factor: TotpFactor) -> str:
    try:
        return mfa.secret_of(factor)
    except MasterKeyMissing:
        raise _unavailable() from None


async def second_factor(state: State, user_id: str, code: str | None) -> bool:
    """True when the user has active TOTP and `code` is valid; a user with TOTP must give a code (403)."""
    mfa: MfaCommands = state.mfa_commands
    factor = await mfa.factor(user_id)
    if factor is None or not is_active(factor):
        if code is not None:
            raise invalid_code("This user has no active TOTP factor")
        return False
    if code is None:
        raise ApiError(403, "mfa_required", "This account uses TOTP: send the current code as mfa_code",
                       {"factor": "totp"})
    await check_totp(state.infra_pool, user_id, _secret(mfa, factor), code)
    return True



def _user(request: Request[Any, Any, Any]) -> Principal:
    principal: Principal = request.user
    if not principal.subject.startswith("usr_"):
        raise ApiError(403, "forbidden", "MFA is for users; this token belongs to a service account")
    return principal


@post("/v1/me/mfa/totp", guards=[authenticated], status_code=201, tags=["MFA"], opt=SECRET_RESPONSE,
      responses=error_responses(e403=USERS_ONLY, e422="mfa_already_enrolled: remove the active factor first",
                               e503="service_unavailable: CAUSELOOP_MASTER_KEY is not configured in production"))
async def enrol_totp(request: Request[Any, Any, Any], state: State) -> Response[schemas.TotpEnrolment]:
    """Start TOTP enrolment: the secret and otpauth URI are shown once; verify a code to activate."""
    principal = _user(request)
    async with tenant_transaction(state.read_pool, "") as conn:
        user = await identity.user_by_id(conn, principal.subject)
    mfa: MfaCommands = state.mfa_commands
    try:
        enrolment = await mfa.enrol(UserId(principal.subject), provide_caller(request))
    except MasterKeyMissing:
        raise _unavailable() from None
    secret = enrolment.revealed or ""
    uri = totp.provisioning_uri(secret, user.email if user is not None else principal.subject)
    headers = {**await settle(state, (SESSIONS_PROJECTION, enrolment.position)), "Cache-Control": "no-store"}
    return Response(schemas.TotpEnrolment(secret=secret, otpauth_uri=uri, status="pending"),
                    status_code=201, headers=headers)


@post("/v1/me/mfa/totp/verify", guards=[authenticated], status_code=200, tags=["MFA"],
      responses={**schemas.CODE_ERRORS, **error_responses(e403=USERS_ONLY)})
async def verify_totp(request: Request[Any, Any, Any], state: State,
                      data: JSONBody[schemas.TotpVerifyRequest]) -> Response[schemas.TotpStatus]:
    """Activate the pending TOTP factor with a current code (422 invalid_mfa_code when wrong; 429 after 5)."""
    principal = _user(request)
    mfa: MfaCommands = state.mfa_commands
    factor = await mfa.factor(principal.subject)
    if factor is None or factor.status is FactorStatus.REMOVED:
        raise ApiError(404, "not_found", "No TOTP enrolment to verify; enrol first")
    await check_totp(state.infra_pool, principal.subject, _secret(mfa, factor), data.code)
    activated = await mfa.activate(UserId(principal.subject), provide_caller(request))
    headers = await settle(state, (SESSIONS_PROJECTION, activated.position))
    return Response(schemas.TotpStatus(status="active"), headers=headers)


@delete("/v1/me/mfa/totp", guards=[authenticated], status_code=204, tags=["MFA"],
      responses={**schemas.CODE_ERRORS, **error_responses(
          e403=f"{USERS_ONLY}; mfa_required: removing an active factor needs a code or a token minted with MFA")})
async def remove_totp(request: Request[Any, Any, Any], state: State,
                      data: Annotated[schemas.TotpRemoveRequest | None, Body()] = None) -> Response[None]:
    """Remove the TOTP factor: needs a current `code`, unless this token was minted with a second factor."""
    principal = _user(request)
    mfa: MfaCommands = state.mfa_commands
    factor = await mfa.factor(principal.subject)
    if factor is None or factor.status is FactorStatus.REMOVED:
        raise ApiError(404, "not_found", "No TOTP factor to remove")
    code = data.code if data is not None else None
    if code is not None:
        await check_totp(state.infra_pool, principal.subject, _secret(mfa, factor), code)
    elif is_active(factor) and not principal.mfa:
        raise ApiError(403, "mfa_required", "Removing TOTP needs a current code or a token minted with MFA",
                       {"factor": "totp"})
    removed = await mfa.remove(UserId(principal.subject), provide_caller(request))
    return Response(None, status_code=204, headers=await settle(state, (SESSIONS_PROJECTION, removed.position)))
