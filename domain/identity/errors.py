"""Identity rule violations. Each code is part of the API contract (docs/api.md, the OpenAPI document)."""

from __future__ import annotations

from domain.errors import DomainError


class LastAdmin(DomainError):
    """A workspace keeps at least one active tenant_admin or owner."""

    code = "last_admin"


class SeatLimit(DomainError):
    """Active memberships may not exceed the organization's seats_total."""

    code = "seat_limit"


class RoleAboveOwn(DomainError):
    """Nobody grants, or takes away, a role above their own level (answered as 403 forbidden)."""

    code = "forbidden"


class AlreadyMember(DomainError):
    """The invited email already belongs to a member (answered as 409 conflict)."""

    code = "conflict"


class AlreadyInvited(DomainError):
    """A pending invitation exists for this email; resend it instead (answered as 409 conflict)."""

    code = "conflict"


class InvitationExpired(DomainError):
    code = "invitation_expired"


class WrongInvitee(DomainError):
    """The invitation was sent to another email than the accepting user's (answered as 403 forbidden)."""

    code = "forbidden"


class WrongWorkspace(DomainError):
    """Signing in with an invitation while asking for another workspace than its own (answered as 403)."""

    code = "forbidden"


class UnknownInvitationToken(DomainError):
    """The token is not one of this invitation's (answered as 404, like a token that names nothing)."""

    code = "not_found"


class MemberNotFound(DomainError):
    """No such (non-removed) member in this workspace (answered as 404)."""

    code = "not_found"


class Offboarded(DomainError):
    """Nothing changes in an offboarded workspace or organization."""

    code = "invalid_transition"
