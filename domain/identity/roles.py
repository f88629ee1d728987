"""Roles and the scopes each grants (api.md "Roles → scopes"): each role includes the one before it."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    READ_ONLY = "read_only"
    VIEWER = "viewer"
    ANALYST = "analyst"
    TENANT_ADMIN = "tenant_admin"
    OWNER = "owner"
    EXECUTIVE = "executive"
    SECURITY_ADMIN = "security_admin"
    COMPLIANCE_ADMIN = "compliance_admin"


_READ_ONLY = frozenset({"dashboards:read", "patterns:read", "predictions:read", "reports:read", "api_tokens:write"})
"""`api_tokens:write` (managing one's own personal API tokens) is every role's, so a person's own sign-in can; a
token narrowed to other scopes (a PAT made for a job) cannot touch credentials. Others' tokens: `api_tokens:admin`."""
_VIEWER = _READ_ONLY | {"issues:read", "recommendations:read", "connectors:read"}
_ANALYST = _VIEWER | {
    "issues:write", "patterns:write", "predictions:write", "recommendations:write", "reports:write", "ingest:write",
}
_TENANT_ADMIN = _ANALYST | {
    "connectors:admin", "webhooks:admin", "members:read", "members:write", "members:admin", "workspace:write",
    "workspace:admin", "audit:read", "service_accounts:admin", "api_tokens:admin",
}
_OWNER = _TENANT_ADMIN | {"workspace:delete", "billing:admin"}

SCOPES_BY_ROLE: dict[Role, frozenset[str]] = {
    Role.READ_ONLY: _READ_ONLY,
    Role.VIEWER: _VIEWER,
    Role.ANALYST: _ANALYST,
    Role.TENANT_ADMIN: _TENANT_ADMIN,
    Role.OWNER: _OWNER,
    Role.EXECUTIVE: (_VIEWER - {"issues:read"}) | {"reports:write"},
    Role.SECURITY_ADMIN: _VIEWER | {"audit:read", "sessions:revoke", "tokens:revoke"},
    Role.COMPLIANCE_ADMIN: _VIEWER | {
        "audit:read", "workspace.compliance:read", "workspace.compliance:write", "governance:read", "governance:write",
    },
}
ALL_SCOPES: frozenset[str] = frozenset().union(*SCOPES_BY_ROLE.values())


def scopes_for(role: Role, requested: frozenset[str] | None = None) -> frozenset[str]:
    """A token's scopes: the role's, narrowed to `requested` when given (never widened)."""
    granted = SCOPES_BY_ROLE[role]
    return granted if requested is None else granted & requested


ROLE_RANK: dict[Role, int] = {
    Role.READ_ONLY: 0,
    Role.VIEWER: 1,
    Role.EXECUTIVE: 1,
    Role.ANALYST: 2,
    Role.SECURITY_ADMIN: 3,
    Role.COMPLIANCE_ADMIN: 3,
    Role.TENANT_ADMIN: 4,
    Role.OWNER: 5,
}
"""Permission level, for "nobody grants a role above their own". Side roles share the level of their peers:
executive sits with viewer (it reads less detail but writes reports); security_admin and compliance_admin sit
between analyst and tenant_admin (viewer plus audit and their own admin scopes, but no member management)."""

ADMIN_ROLES: frozenset[Role] = frozenset({Role.TENANT_ADMIN, Role.OWNER})
"""Roles that count as a tenant admin for the `last_admin` rule (the owner administers the workspace too)."""


def may_grant(actor: Role, role: Role) -> bool:
    """An actor may give (or take away) a role only at or below their own level."""
    return ROLE_RANK[role] <= ROLE_RANK[actor]
