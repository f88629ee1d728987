"""An offboarded client's workspace refuses every credential at once, on every path; its stored history stays."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from adapters.event_store import EVENTS_TABLE, EventStore
from adapters.settings import Settings
from adapters.tokens import mint_access_token
from cli.main import main, wait_for_projection
from commands.identity import EnsureMembership, IdentityCommands
from commands.provisioning import Provision, ProvisioningCommands
from domain.identity.roles import Role, scopes_for
from tests.e2e.conftest import TEST_ACTOR, Workers
from tests.e2e.members_helpers import Client
from tests.e2e.signin_support import JwksServer, SigningKey, clerk_client, exchange
from tests.e2e.test_me_roles_seats import wait_for_membership

pytestmark = [pytest.mark.postgres, pytest.mark.nats]
KEY = SigningKey("offboarding-key")


def bearer(settings: Settings, user_id: str, workspace_id: str, role: Role) -> dict[str, str]:
    token = mint_access_token(settings, subject=user_id, workspace_id=workspace_id, role=role.value,
                              scopes=scopes_for(role))
    return {"Authorization": f"Bearer {token}"}


def secret(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


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


def events_of(settings: Settings, workspace_id: str) -> int:
    """How many stored events name the workspace (every event records the workspace it happened in)."""
    with psycopg.connect(settings.database_url, autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        row = conn.execute(f"SELECT count(*) FROM {EVENTS_TABLE} WHERE position(%s::bytea in state) > 0",
                           (workspace_id.encode(),)).fetchone()
    assert row is not None
    return int(row[0])


async def test_after_offboard_no_credential_and_no_sign_in_gets_in_and_nothing_is_written(
        settings: Settings, workers: Workers, identity_store: EventStore, tmp_path: Path) -> None:
    """Issue #10 F8: the SCIM token still read the members, SCIM writes answered 400, and exchange and refresh
    still issued tokens and wrote session events into the offboarded workspace."""
    slug = f"gone-{uuid.uuid4().hex[:8]}"
    operator = ProvisioningCommands(identity_store)
    done = operator.provision(Provision(org_name="Gone Inc", org_slug=slug, owner_email=f"owner@{slug}.example.test"))
    analyst = IdentityCommands(identity_store, actor=TEST_ACTOR).ensure_membership(
        EnsureMembership(email=f"ann@{slug}.example.test", workspace_slug=slug, role=Role.ANALYST))
    for user_id in (done.owner_user_id, analyst.user_id):
        wait_for_membership(settings, done.workspace_id, user_id)
    owner = bearer(settings, done.owner_user_id, done.workspace_id, Role.OWNER)
    newcomer = f"new@{slug}.example.test"

    with JwksServer(KEY) as jwks:
        async with clerk_client(settings, jwks, str(tmp_path)) as api:
            pat = (await api.post("/v1/api-tokens", json={"name": "ci", "scopes": ["issues:read"]},
                                  headers=owner)).json()["secret"]
            account = (await api.post("/v1/service-accounts", json={"name": "bot", "role": "viewer"},
                                      headers=owner)).json()
            robot = (await api.post(f"/v1/service-accounts/{account['id']}/tokens", json={"name": "t"},
                                    headers=owner)).json()["secret"]
            scim = (await api.post("/v1/settings/scim-tokens", json={"name": "Okta"}, headers=owner)).json()["secret"]
            invitation = (await api.post("/v1/invitations", json={"email": newcomer, "role": "viewer"},
                                         headers=owner)).json()["token"]
            session = (await exchange(api, KEY.token(sub=f"user_owner_{slug}", email=f"owner@{slug}.example.test"))
                       ).json()
            working = [await api.get("/v1/issues", headers=secret(value))
                       for value in (pat, robot, session["access_token"])]
            working.append(await api.get("/scim/v2/Users", headers=secret(scim)))
            assert [r.status_code for r in working] == [200] * 4, [r.text for r in working]

            gone = operator.offboard(slug)
            assert wait_for_projection(settings, "identity", gone.position, 10)
            written = events_of(settings, done.workspace_id)
            answers = {
                "personal token": await api.get("/v1/issues", headers=secret(pat)),
                "service-account token": await api.get("/v1/issues", headers=secret(robot)),
                "sign-in access token": await api.get("/v1/issues", headers=secret(session["access_token"])),
                "SCIM read": await api.get("/scim/v2/Users", headers=secret(scim)),
                "SCIM write": await api.post("/scim/v2/Users", headers=secret(scim),
                                             json={"userName": f"late@{slug}.example.test", "active": True}),
                "exchange": await exchange(api, KEY.token(sub=f"user_ann_{slug}", email=f"ann@{slug}.example.test")),
                "exchange naming the workspace": await exchange(
                    api, KEY.token(sub=f"user_owner_{slug}"), workspace_id=done.workspace_id),
                "exchange with an invitation": await exchange(
                    api, KEY.token(sub=f"user_new_{slug}", email=newcomer), invitation_token=invitation),
                "refresh": await api.post("/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}),
            }

    assert {name: r.status_code for name, r in answers.items()} == {name: 401 for name in answers}
    assert events_of(settings, done.workspace_id) == written
