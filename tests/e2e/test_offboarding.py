"""An offboarded client's workspace refuses every token at once; its stored history stays."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from adapters.event_store import EventStore
from adapters.settings import Settings
from adapters.tokens import mint_access_token
from cli.main import main
from commands.identity import EnsureMembership, IdentityCommands
from domain.identity.roles import Role, scopes_for
from tests.e2e.conftest import TEST_ACTOR
from tests.e2e.members_helpers import Client
from tests.e2e.test_me_roles_seats import wait_for_membership

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


def bearer(settings: Settings, user_id: str, workspace_id: str, role: Role) -> dict[str, str]:
    token = mint_access_token(settings, subject=user_id, workspace_id=workspace_id, role=role.value,
                              scopes=scopes_for(role))
    return {"Authorization": f"Bearer {token}"}


async def test_after_offboard_every_members_token_is_401_and_the_rows_remain(
        api: Client, settings: Settings, identity_store: EventStore, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    environ = {"DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema,
               "JWT_SECRET": settings.jwt_secret, "DATA_DIR": str(tmp_path)}
    slug = f"gone-{uuid.uuid4().hex[:8]}"
    assert main(["provision", "--org-name", "Gone Inc", "--org-slug", slug, "--owner-email",
                 f"owner@{slug}.example.test"], environ) == 0
    ids = json.loads(capsys.readouterr().out)
    analyst = IdentityCommands(identity_store, actor=TEST_ACTOR).ensure_membership(
        EnsureMembership(email=f"ann@{slug}.example.test", workspace_slug=slug, role=Role.ANALYST))
    for user_id in (ids["owner_user_id"], analyst.user_id):
        wait_for_membership(settings, ids["workspace_id"], user_id)
    owner = bearer(settings, ids["owner_user_id"], ids["workspace_id"], Role.OWNER)
    member = bearer(settings, analyst.user_id, ids["workspace_id"], Role.ANALYST)
    assert (await api.get("/v1/issues", headers=member.copy())).status_code == 200

    assert main(["offboard", "--org-slug", slug], environ) == 0
    answers = [await api.get("/v1/users/me", headers=owner), await api.get("/v1/issues", headers=member)]

    assert [r.status_code for r in answers] == [401, 401]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.database_schema}"')
        workspace = conn.execute("SELECT status FROM workspaces WHERE id = %s", (ids["workspace_id"],)).fetchone()
        org = conn.execute("SELECT status FROM organizations WHERE id = %s", (ids["organization_id"],)).fetchone()
        members = conn.execute("SELECT count(*) FROM memberships WHERE workspace_id = %s",
                               (ids["workspace_id"],)).fetchone()
    assert (workspace, org, members) == (("offboarded",), ("cancelled",), (2,))
