"""The roles (`/v1/roles`), their labels, ranks and scopes.
"""

from __future__ import annotations

from litestar import Controller, get

from api.core.auth import authenticated
from api.members import schemas
from domain.identity.roles import ROLE_RANK, SCOPES_BY_ROLE, Role

ROLE_LABELS = {
    Role.READ_ONLY: "Read Only", Role.VIEWER: "Viewer", Role.EXECUTIVE: "Executive", Role.ANALYST: "Analyst",
    Role.SECURITY_ADMIN: "Security Admin", Role.COMPLIANCE_ADMIN: "Compliance Admin",
    Role.TENANT_ADMIN: "Workspace Admin", Role.OWNER: "Owner",
}


class RolesController(Controller):
    path = "/v1/roles"
    tags = ("Users & Members",)

    @get("/", guards=[authenticated])
    async def list_roles(self) -> schemas.RoleList:
        """Every role with its label, rank (you may grant roles at or below your own) and scopes."""
        ordered = sorted(Role, key=lambda r: (ROLE_RANK[r], r.value))
        return schemas.RoleList(data=[schemas.RoleView(role=r, label=ROLE_LABELS[r], rank=ROLE_RANK[r],
                                                       scopes=sorted(SCOPES_BY_ROLE[r])) for r in ordered])
