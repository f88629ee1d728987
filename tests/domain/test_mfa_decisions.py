"""TOTP factor: enrol (pending), activate, remove; an active factor is not silently replaced."""

from __future__ import annotations

import uuid

import pytest

from domain.ids import UserId
from domain.mfa.factor import (
    FactorStatus,
    NoTotpFactor,
    TotpAlreadyActive,
    activate_totp,
    enrol_totp,
    project_factor,
    remove_totp,
)
from tests.builders import T0, T1, meta

STREAM = uuid.UUID("3c2b1a09-8f7e-5d6c-9b5a-4f3e2d1c0b9a")
USER = UserId("usr_01KV1PX3NR96XJRGD48NNHH431")


def enrolled(ciphertext: str = "v1.first"):  # type: ignore[no-untyped-def]
    return project_factor(None, [enrol_totp(None, stream_id=STREAM, user_id=USER, secret_ciphertext=ciphertext,
                                            meta=meta(T0))])


def test_an_enrolment_is_pending_until_activated() -> None:
    factor = enrolled()

    assert factor.status is FactorStatus.PENDING
    assert project_factor(factor, activate_totp(factor, meta(T1))).status is FactorStatus.ACTIVE


def test_a_pending_enrolment_is_replaced_by_a_new_one() -> None:
    factor = enrolled()

    event = enrol_totp(factor, stream_id=STREAM, user_id=USER, secret_ciphertext="v1.second", meta=meta(T1))

    assert event.originator_version == 2 and project_factor(factor, [event]).secret_ciphertext == "v1.second"


def test_an_active_factor_must_be_removed_before_enrolling_again() -> None:
    active = project_factor(enrolled(), activate_totp(enrolled(), meta(T1)))

    with pytest.raises(TotpAlreadyActive):
        enrol_totp(active, stream_id=STREAM, user_id=USER, secret_ciphertext="v1.other", meta=meta(T1))


def test_activating_an_active_factor_again_records_nothing() -> None:
    active = project_factor(enrolled(), activate_totp(enrolled(), meta(T1)))

    assert activate_totp(active, meta(T1)) == []


def test_nothing_to_verify_or_remove_without_an_enrolment() -> None:
    with pytest.raises(NoTotpFactor):
        activate_totp(None, meta(T1))
    with pytest.raises(NoTotpFactor):
        remove_totp(None, meta(T1))


def test_removal_forgets_the_ciphertext_and_allows_a_new_enrolment() -> None:
    removed = project_factor(enrolled(), [remove_totp(enrolled(), meta(T1))])

    assert removed.status is FactorStatus.REMOVED and removed.secret_ciphertext == ""
    assert enrol_totp(removed, stream_id=STREAM, user_id=USER, secret_ciphertext="v1.again",
                      meta=meta(T1)).originator_version == 3
