"""Invitation rules: one pending invitation per email, resend keeps earlier links, single use, 7 days, the invitee."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from domain.errors import InvalidTransition
from domain.identity.errors import AlreadyInvited, InvitationExpired, UnknownInvitationToken, WrongInvitee
from domain.identity.events import InvitationAccepted, InvitationEvent, InvitationResent, InvitationRevoked
from domain.identity.invitation import (
    Invitation,
    InvitationStatus,
    accept_invitation,
    evolve,
    resend_invitation,
    revoke_invitation,
    send_invitation,
)
from domain.identity.roles import Role
from domain.ids import UserId
from tests.builders import T1, meta

INVITATION = uuid.UUID("01949a3c-0000-7000-8000-0000000000bb")
BOB = UserId("usr_01KV1PX3NR96XJRGD48NNHH433")
FIRST, SECOND = "a" * 64, "b" * 64


def apply(invitation: Invitation | None, *events: InvitationEvent) -> Invitation:
    for event in events:
        invitation = evolve(invitation, event)  # type: ignore[arg-type]
    assert invitation is not None
    return invitation


def sent(email: str = "Bob@Example.com") -> Invitation:
    return apply(None, send_invitation(None, invitation_id=INVITATION, email=email, role=Role.ANALYST,
                                       token_hash=FIRST, meta=meta()))


def accept(invitation: Invitation, token_hash: str = FIRST, email: str = "bob@example.com",
           days: float = 1) -> InvitationAccepted:
    return accept_invitation(invitation, token_hash=token_hash, user_id=BOB, user_email=email,
                             meta=meta(T1 + timedelta(days=days)))


def test_an_invitation_is_pending_for_seven_days_with_the_email_in_lower_case() -> None:
    invitation = sent()

    assert invitation.status is InvitationStatus.PENDING
    assert invitation.email == "bob@example.com"
    assert invitation.tokens == {FIRST: T1 + timedelta(days=7)}


def test_inviting_the_same_email_while_pending_is_a_conflict() -> None:
    with pytest.raises(AlreadyInvited) as refused:
        send_invitation(sent(), invitation_id=INVITATION, email="bob@example.com", role=Role.VIEWER,
                        token_hash=SECOND, meta=meta())

    assert refused.value.code == "conflict"


def test_after_a_revocation_a_new_round_starts_and_old_tokens_stop_working() -> None:
    revoked = apply(sent(), *revoke_invitation(sent(), meta()))
    again = send_invitation(revoked, invitation_id=INVITATION, email="bob@example.com", role=Role.VIEWER,
                            token_hash=SECOND, meta=meta())
    invitation = apply(revoked, again)

    assert again.originator_version == 3
    assert (invitation.status, invitation.role, set(invitation.tokens)) == (InvitationStatus.PENDING, Role.VIEWER,
                                                                              {SECOND})
    with pytest.raises(UnknownInvitationToken):
        accept(invitation, FIRST)


def test_resend_adds_a_token_and_the_original_link_stays_valid() -> None:
    resent = resend_invitation(sent(), SECOND, meta(T1 + timedelta(days=3)))
    invitation = apply(sent(), resent)

    assert resent == InvitationResent(**{**_envelope(resent)}, token_hash=SECOND,
                                      expires_at=T1 + timedelta(days=10))
    assert isinstance(accept(invitation, FIRST, days=6), InvitationAccepted)
    assert isinstance(accept(invitation, SECOND, days=9), InvitationAccepted)
    with pytest.raises(InvitationExpired):
        accept(invitation, FIRST, days=8)


def _envelope(event: InvitationEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in ("originator_id", "originator_version", "occurred_at",
                                                     "workspace_id", "actor")}


def test_an_invitation_is_accepted_once() -> None:
    accepted = apply(sent(), accept(sent()))

    assert accepted.status is InvitationStatus.ACCEPTED
    with pytest.raises(InvalidTransition):
        accept(accepted)


def test_an_expired_link_is_refused_with_its_own_code() -> None:
    with pytest.raises(InvitationExpired) as refused:
        accept(sent(), days=7)

    assert refused.value.code == "invitation_expired"


def test_a_token_of_no_round_of_this_invitation_is_not_found() -> None:
    with pytest.raises(UnknownInvitationToken):
        accept(sent(), SECOND)


def test_only_the_invited_email_may_accept() -> None:
    with pytest.raises(WrongInvitee):
        accept(sent(), email="mallory@example.com")
    assert isinstance(accept(sent(), email=" BOB@example.com "), InvitationAccepted)


def test_a_revoked_invitation_cannot_be_accepted_or_resent_and_revoking_again_records_nothing() -> None:
    events = revoke_invitation(sent(), meta())
    revoked = apply(sent(), *events)

    assert [type(e) for e in events] == [InvitationRevoked]
    assert revoke_invitation(revoked, meta()) == []
    with pytest.raises(InvalidTransition):
        accept(revoked)
    with pytest.raises(InvalidTransition):
        resend_invitation(revoked, SECOND, meta())


def test_an_accepted_invitation_cannot_be_revoked() -> None:
    with pytest.raises(InvalidTransition):
        revoke_invitation(apply(sent(), accept(sent())), meta())
