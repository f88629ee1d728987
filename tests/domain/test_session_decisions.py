"""Sessions: a refresh-token family rotates; presenting a rotated-away token revokes the family."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from domain.errors import InvalidValue
from domain.ids import UserId
from domain.sessions.events import SessionRefreshed, SessionRevoked
from domain.sessions.session import (
    REFRESH_TOKEN_REUSE,
    SESSION_LIFETIME,
    Session,
    SessionExpired,
    SessionNotActive,
    UnknownRefreshToken,
    evolve,
    project_session,
    revoke_session,
    rotate_refresh_token,
    start_session,
)
from tests.builders import T0, T1, meta

SESSION = uuid.UUID("019a3c5e-7f10-7a2b-9c3d-4e5f6a7b8c9d")
USER = UserId("usr_01KV1PX3NR96XJRGD48NNHH431")
H1, H2, H3 = "1" * 64, "2" * 64, "3" * 64


def started(mfa: bool = False) -> Session:
    session = project_session(None, [start_session(session_id=SESSION, user_id=USER, refresh_hash=H1, mfa=mfa,
                                                   meta=meta(T0))])
    assert session is not None
    return session


def test_the_current_refresh_token_rotates_to_a_new_one() -> None:
    event = rotate_refresh_token(started(), H1, H2, meta(T1))

    assert isinstance(event, SessionRefreshed)
    assert (event.previous_hash, event.refresh_hash, event.originator_version) == (H1, H2, 2)
    after = evolve(started(), event)
    assert after.refresh_hash == H2 and after.previous_hashes == {H1} and after.active


def test_presenting_a_rotated_away_token_revokes_the_family() -> None:
    session = evolve(started(), rotate_refresh_token(started(), H1, H2, meta(T1)))

    event = rotate_refresh_token(session, H1, H3, meta(T1))

    assert isinstance(event, SessionRevoked) and event.reason == REFRESH_TOKEN_REUSE
    assert not evolve(session, event).active


def test_a_revoked_family_refreshes_no_more_not_even_with_its_newest_token() -> None:
    session = evolve(started(), rotate_refresh_token(started(), H1, H2, meta(T1)))
    revoked = evolve(session, rotate_refresh_token(session, H1, H3, meta(T1)))

    with pytest.raises(SessionNotActive):
        rotate_refresh_token(revoked, H2, H3, meta(T1))


def test_a_token_of_another_family_is_unknown() -> None:
    with pytest.raises(UnknownRefreshToken):
        rotate_refresh_token(started(), H3, H2, meta(T1))


def test_only_hashes_are_stored_never_a_raw_token() -> None:
    with pytest.raises(InvalidValue):
        start_session(session_id=SESSION, user_id=USER, refresh_hash="clp_refresh_secret", mfa=False, meta=meta(T0))


def test_revoking_twice_records_nothing_the_second_time() -> None:
    session = started()
    revoked = project_session(session, revoke_session(session, "signed_out", meta(T1)))

    assert revoked is not None and not revoked.active
    assert revoke_session(revoked, "signed_out", meta(T1)) == []


def test_the_session_remembers_whether_it_began_with_a_second_factor() -> None:
    assert started(mfa=True).mfa and not started(mfa=False).mfa


def test_a_family_refreshes_for_thirty_days_then_the_user_signs_in_again() -> None:
    with pytest.raises(SessionExpired):
        rotate_refresh_token(started(), H1, H2, meta(T0 + SESSION_LIFETIME + timedelta(seconds=1)))

    assert isinstance(rotate_refresh_token(started(), H1, H2, meta(T0 + SESSION_LIFETIME)), SessionRefreshed)
