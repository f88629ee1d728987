"""The Invitation aggregate: one stream per (workspace, email), holding the acceptance tokens' hashes.

A stream per (workspace, email) makes "one pending invitation per email" a property of the event store:
inviting again while one is pending is a conflict; after a revocation or an acceptance, a new
InvitationSent opens the next round on the same stream (its earlier tokens stop working).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import assert_never
from uuid import UUID

import msgspec

from domain.errors import InvalidTransition
from domain.events import Meta, envelope
from domain.identity.errors import AlreadyInvited, InvitationExpired, UnknownInvitationToken, WrongInvitee
from domain.identity.events import (
    AnyInvitationEvent,
    InvitationAccepted,
    InvitationEvent,
    InvitationResent,
    InvitationRevoked,
    InvitationSent,
)
from domain.identity.roles import Role
from domain.identity.user import clean_email
from domain.ids import UserId, WorkspaceId

INVITATION_TTL = timedelta(days=7)


class InvitationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"


class Invitation(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    workspace_id: WorkspaceId
    email: str
    role: Role
    status: InvitationStatus
    tokens: dict[str, datetime]
    """SHA-256 hex of each token of the current round -> when it expires."""


def evolve(invitation: Invitation | None, event: AnyInvitationEvent) -> Invitation:
    if isinstance(event, InvitationSent):
        return Invitation(id=event.originator_id, version=event.originator_version, workspace_id=event.workspace_id,
                          email=event.email, role=event.role, status=InvitationStatus.PENDING,
                          tokens={event.token_hash: event.expires_at})
    assert invitation is not None, "an invitation stream starts with InvitationSent"
    match event:
        case InvitationResent():
            return msgspec.structs.replace(invitation, version=event.originator_version,
                                           tokens={**invitation.tokens, event.token_hash: event.expires_at})
        case InvitationRevoked():
            return msgspec.structs.replace(invitation, version=event.originator_version,
                                           status=InvitationStatus.REVOKED)
        case InvitationAccepted():
            return msgspec.structs.replace(invitation, version=event.originator_version,
                                           status=InvitationStatus.ACCEPTED)
        case _:
            assert_never(event)


def project_invitation(invitation: Invitation | None, events: Iterable[AnyInvitationEvent]) -> Invitation | None:
    return functools.reduce(evolve, events, invitation)


def send_invitation(current: Invitation | None, *, invitation_id: UUID, email: str, role: Role, token_hash: str,
                    meta: Meta) -> InvitationSent:
    """Invite `email` (the caller has checked the workspace: role ≤ inviter's, not a member, a free seat)."""
    if current is not None and current.status is InvitationStatus.PENDING:
        raise AlreadyInvited(f"{current.email} already has a pending invitation; resend it instead",
                             email=current.email)
    version = 1 if current is None else current.version + 1
    return InvitationSent(**envelope(meta, invitation_id, version), email=clean_email(email), role=role,
                          token_hash=token_hash, expires_at=meta.now + INVITATION_TTL)


def _pending(invitation: Invitation, verb: str) -> None:
    if invitation.status is not InvitationStatus.PENDING:
        raise InvalidTransition(f"cannot {verb} an invitation that is {invitation.status}",
                                status=invitation.status)


def resend_invitation(invitation: Invitation, token_hash: str, meta: Meta) -> InvitationResent:
    """A fresh token valid for another 7 days; the earlier links keep working until they expire."""
    _pending(invitation, "resend")
    return InvitationResent(**envelope(meta, invitation.id, invitation.version + 1), token_hash=token_hash,
                            expires_at=meta.now + INVITATION_TTL)


def revoke_invitation(invitation: Invitation, meta: Meta) -> list[InvitationEvent]:
    """Revoking a revoked invitation records nothing; an accepted one cannot be revoked (remove the member)."""
    if invitation.status is InvitationStatus.REVOKED:
        return []
    _pending(invitation, "revoke")
    return [InvitationRevoked(**envelope(meta, invitation.id, invitation.version + 1))]


def accept_invitation(invitation: Invitation, *, token_hash: str, user_id: UserId, user_email: str,
                      meta: Meta) -> InvitationAccepted:
    """Single use, within 7 days of the token's sending, by the user the invitation was sent to."""
    expires_at = invitation.tokens.get(token_hash)
    if expires_at is None:
        raise UnknownInvitationToken("invitation not found")
    _pending(invitation, "accept")
    if meta.now >= expires_at:
        raise InvitationExpired("the invitation link has expired; ask for it to be resent",
                                expired_at=expires_at.isoformat())
    if clean_email(user_email) != invitation.email:
        raise WrongInvitee("this invitation was sent to another email address")
    return InvitationAccepted(**envelope(meta, invitation.id, invitation.version + 1), user_id=user_id)
