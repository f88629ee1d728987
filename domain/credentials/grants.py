"""What a principal may hand on: scopes to a token, a role to a service account. Never more than it holds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from domain.errors import Forbidden, InvalidValue
from domain.identity.roles import ALL_SCOPES, Role, may_grant

SCIM_TOKEN_SCOPES = frozenset({"members:read", "members:write", "members:admin"})
"""What a SCIM token does on /scim/v2 (reads members, provisions and re-roles them, suspends them). It lists no
scope, so these are the scopes its maker must hold."""

SCOPE_GROUPS = ("Data", "Integrations", "Workspace", "AI & Reports", "Admin")
"""The tabs of the docs' scope picker, in their order."""

_GROUP_OF_RESOURCE = {
    "issues": "Data", "patterns": "Data", "recommendations": "Data", "dashboards": "Data",
    "connectors": "Integrations", "webhooks": "Integrations", "ingest": "Integrations",
    "workspace": "Workspace", "workspace.compliance": "Workspace", "members": "Workspace", "billing": "Workspace",
    "predictions": "AI & Reports", "reports": "AI & Reports", "ai": "AI & Reports",
}


def group_of(scope: str) -> str:
    """The tab a scope is listed under; scopes of unknown resources land in Admin (the most guarded tab)."""
    return _GROUP_OF_RESOURCE.get(scope.partition(":")[0], "Admin")


def catalogue() -> dict[str, list[str]]:
    """Every scope, grouped by tab, sorted within each tab."""
    groups: dict[str, list[str]] = {name: [] for name in SCOPE_GROUPS}
    for scope in sorted(ALL_SCOPES):
        groups[group_of(scope)].append(scope)
    return groups


def can_grant(granter: Role, role: Role) -> bool:
    """Nobody grants a role above their own: the role order of domain/identity/roles.py (ROLE_RANK), the same
    rule the members API applies. A narrowed token gains nothing by it: a service account acts only through
    its tokens, whose scopes are bounded by the scopes of whoever issues them (`clean_scopes`)."""
    return may_grant(granter, role)


def require_grantable(granter: Role, role: Role) -> None:
    if not can_grant(granter, role):
        raise Forbidden(f"a {granter.value} cannot grant the role {role.value}", field="role", role=role.value)


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    """What the credential in use may hand on to a credential it creates or rotates."""

    scopes: frozenset[str]
    expires_at: datetime | None = None
    """The latest a credential it makes may expire. None: no bound (it never expires itself, or it is a person's
    own sign-in, which the person can always renew)."""

    def narrowed(self, scopes: frozenset[str]) -> Grant:
        """The same grant, holding only `scopes` of its own (e.g. those of a service account's role)."""
        return msgspec.structs.replace(self, scopes=self.scopes & scopes)


def clean_scopes(requested: Iterable[str], held: frozenset[str]) -> tuple[str, ...]:
    """A token's scopes: at least one, each a known scope (400 naming it), none the creator lacks (403)."""
    scopes = tuple(sorted({scope.strip() for scope in requested}))
    if not scopes:
        raise InvalidValue("scopes", "must name at least one scope")
    unknown = [scope for scope in scopes if scope not in ALL_SCOPES]
    if unknown:
        raise InvalidValue("scopes", f"unknown scope {unknown[0]}")
    _require_held(scopes, held)
    return scopes


def require_within(grant: Grant, scopes: Iterable[str], expires_at: datetime | None) -> None:
    """A credential never holds more than the one that creates or rotates it: its scopes are among the maker's
    (403 naming the first that is not), and it expires no later than the maker (403 on `expires_at`), so a maker
    that expires can neither make nor keep alive a credential that lives longer or never expires."""
    _require_held(scopes, grant.scopes)
    if grant.expires_at is not None and (expires_at is None or expires_at > grant.expires_at):
        raise Forbidden(f"the credential in use expires at {grant.expires_at.isoformat()}: what it creates or "
                        "rotates must expire by then", field="expires_at", limit=grant.expires_at.isoformat())


def _require_held(scopes: Iterable[str], held: frozenset[str]) -> None:
    missing = sorted(set(scopes) - held)
    if missing:
        raise Forbidden(f"you cannot grant the scope {missing[0]}, which you do not hold",
                        field="scopes", scope=missing[0])
