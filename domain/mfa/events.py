"""MFA events: one stream per user. The TOTP secret is stored only as AES-256-GCM ciphertext."""

from __future__ import annotations

from typing import ClassVar

from domain.events import DomainEvent
from domain.ids import UserId


class MfaEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "mfa"

    user_id: UserId


class TotpEnrolled(MfaEvent, frozen=True, kw_only=True):
    """A new secret, pending until a code from it is verified; it replaces any earlier pending one."""

    secret_ciphertext: str


class TotpActivated(MfaEvent, frozen=True, kw_only=True):
    pass


class TotpRemoved(MfaEvent, frozen=True, kw_only=True):
    pass


AnyMfaEvent = TotpEnrolled | TotpActivated | TotpRemoved
MFA_EVENT_TYPES: tuple[type[DomainEvent], ...] = (TotpEnrolled, TotpActivated, TotpRemoved)
