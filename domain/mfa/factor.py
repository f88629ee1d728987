"""A user's TOTP factor: enrol (pending), activate after a verified code, remove; and the fold.

Checking a code needs the decrypted secret and the clock, so the command does it; the decisions here
state what may happen in which state.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from enum import StrEnum
from typing import assert_never
from uuid import UUID

import msgspec

from domain.errors import DomainError
from domain.events import Meta, envelope
from domain.ids import UserId
from domain.mfa.events import AnyMfaEvent, MfaEvent, TotpActivated, TotpEnrolled, TotpRemoved


class FactorStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REMOVED = "removed"


class TotpFactor(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    user_id: UserId
    status: FactorStatus
    secret_ciphertext: str


class TotpAlreadyActive(DomainError):
    code = "mfa_already_enrolled"


class NoTotpFactor(DomainError):
    code = "mfa_not_enrolled"


def evolve(factor: TotpFactor | None, event: AnyMfaEvent) -> TotpFactor:
    match event:
        case TotpEnrolled():
            return TotpFactor(id=event.originator_id, version=event.originator_version, user_id=event.user_id,
                              status=FactorStatus.PENDING, secret_ciphertext=event.secret_ciphertext)
        case TotpActivated():
            assert factor is not None, "activation follows an enrolment"
            return msgspec.structs.replace(factor, version=event.originator_version, status=FactorStatus.ACTIVE)
        case TotpRemoved():
            assert factor is not None, "removal follows an enrolment"
            return msgspec.structs.replace(factor, version=event.originator_version, status=FactorStatus.REMOVED,
                                           secret_ciphertext="")
        case _:
            assert_never(event)


def project_factor(factor: TotpFactor | None, events: Iterable[AnyMfaEvent]) -> TotpFactor | None:
    return functools.reduce(evolve, events, factor)


def is_active(factor: TotpFactor | None) -> bool:
    return factor is not None and factor.status is FactorStatus.ACTIVE


def enrol_totp(factor: TotpFactor | None, *, stream_id: UUID, user_id: UserId, secret_ciphertext: str,
               meta: Meta) -> TotpEnrolled:
    """An active factor must be removed before another is enrolled; a pending one is simply replaced."""
    if is_active(factor):
        raise TotpAlreadyActive("TOTP is already active; remove it before enrolling a new secret")
    version = factor.version + 1 if factor is not None else 1
    return TotpEnrolled(**envelope(meta, stream_id, version), user_id=user_id, secret_ciphertext=secret_ciphertext)


def activate_totp(factor: TotpFactor | None, meta: Meta) -> list[MfaEvent]:
    """Only a pending enrolment activates (its code was verified); activating again records nothing."""
    if factor is None or factor.status is FactorStatus.REMOVED:
        raise NoTotpFactor("no TOTP enrolment to verify; enrol first")
    if factor.status is FactorStatus.ACTIVE:
        return []
    return [TotpActivated(**envelope(meta, factor.id, factor.version + 1), user_id=factor.user_id)]


def remove_totp(factor: TotpFactor | None, meta: Meta) -> TotpRemoved:
    """There must be a factor (pending or active) to remove."""
    if factor is None or factor.status is FactorStatus.REMOVED:
        raise NoTotpFactor("no TOTP factor to remove")
    return TotpRemoved(**envelope(meta, factor.id, factor.version + 1), user_id=factor.user_id)
