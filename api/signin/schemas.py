"""Request and response bodies of sign-in (docs-facts §3.2–3.3) and MFA (api.md B "Tokens")."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from api.core.errors import error_responses
from api.core.input_policy import RequestBody
from api.members.schemas import Token

WorkspaceRef = Annotated[str, msgspec.Meta(pattern=r"^ws_[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")]
TotpCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$", description="6-digit code from the authenticator app")]
Jwt = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
InvitationToken = Annotated[Token, msgspec.Meta(description=(
    "The `clp_inv_…` token of a pending invitation addressed to the subject token's email: a person invited by "
    "email signs in with it even when unknown so far (the invitation is accepted, the user registered if new)"))]
RefreshToken = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]



class ExchangeRequest(RequestBody, kw_only=True):
    subject_token: Jwt
    """A Clerk session JWT (RS256), or in development one printed by `causeloop token --clerk --email E`."""
    workspace_id: WorkspaceRef | None = None
    """The workspace to sign in to (must be an active membership); default: the user's first active one."""
    mfa_code: TotpCode | None = None
    """The current TOTP code: required when the user has an active TOTP factor, and it marks the token `mfa`."""
    invitation_token: InvitationToken | None = None
    """How a person invited by email gets in, even one unknown so far: the `clp_inv_…` token of a pending
    invitation addressed to the Clerk token's `email`. The invitation is accepted (the user registered if new,
    the Clerk id linked) and the tokens are for its workspace (`workspace_id`, if given, must be that one)."""


class RefreshRequest(RequestBody, kw_only=True):
    refresh_token: RefreshToken


class TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"]
    expires_in: int
    scope: str
    workspace_id: str


class TotpEnrolment(msgspec.Struct, kw_only=True):
    """Shown once: the secret is stored encrypted and never returned again."""

    secret: str
    otpauth_uri: str
    status: Literal["pending"]


class TotpVerifyRequest(RequestBody, kw_only=True):
    code: TotpCode


class TotpStatus(msgspec.Struct, kw_only=True):
    status: Literal["active"]


class TotpRemoveRequest(RequestBody, kw_only=True):
    code: TotpCode | None = None
    """A current code; may be left out when the caller's token was minted with a second factor."""


EXCHANGE_ERRORS = error_responses(
    e401="invalid_grant: subject_token is invalid or could not be verified",
    e403="forbidden: unknown identity, or not an active member of the workspace, or (with invitation_token) "
         "the invitation is addressed to another email or workspace, or the token has no email claim; "
         "mfa_required: the user has TOTP and sent no mfa_code",
    e404="not_found: invitation_token names no invitation",
    e422="invalid_mfa_code: mfa_code is wrong or already used; with invitation_token: invitation_expired, "
         "invalid_transition (already accepted or revoked), seat_limit",
    e503="service_unavailable: CLERK_JWKS_URL is not configured in production, or Clerk's keys cannot be fetched",
)
REFRESH_ERRORS = error_responses(
    e401="unauthorized: the refresh token is unknown, revoked, reused or its session expired")
CODE_ERRORS = error_responses(
    e404="not_found: no TOTP enrolment",
    e422="invalid_mfa_code: the code is wrong or already used",
    e503="service_unavailable: CAUSELOOP_MASTER_KEY is not configured in production",
)
