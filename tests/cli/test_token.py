"""`causeloop token`: workspaces and users are created once through the event store, and the token verifies."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import jwt
import pytest

from adapters.event_store import EventStore
from adapters.settings import Settings
from adapters.tokens import Principal, verify_access_token
from cli.main import main
from cli.services import write_services
from commands.identity import user_stream, workspace_stream
from domain.identity.events import MemberAdded
from domain.identity.roles import SCOPES_BY_ROLE, Role, scopes_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def environ(settings: Settings, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url,
        "DATABASE_SCHEMA": settings.database_schema,
        "JWT_SECRET": settings.jwt_secret,
        "DATA_DIR": str(tmp_path / "data"),
    }


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def mint(environ: dict[str, str], capsys: pytest.CaptureFixture[str], settings: Settings, *args: str) -> Principal:
    assert main(["token", *args], environ) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "stdout holds the token and nothing else"
    return verify_access_token(settings, out.strip())


def stream_types(settings: Settings, stream_id: uuid.UUID) -> list[str]:
    store = EventStore(settings, pool_size=1)
    try:
        return [type(event).__name__ for event in store.load(stream_id)]
    finally:
        store.close()


def test_the_first_token_provisions_the_workspace_and_user_and_later_ones_reuse_them(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    email, slug = f"{unique('alice')}@example.com", unique("acme")

    first = mint(environ, capsys, settings, "--email", email, "--workspace", slug)
    again = mint(environ, capsys, settings, "--email", email.upper(), "--workspace", slug)

    assert (again.workspace_id, again.subject) == (first.workspace_id, first.subject)
    assert first.workspace_id.startswith("ws_") and first.subject.startswith("usr_")
    assert stream_types(settings, workspace_stream(slug)) == ["WorkspaceProvisioned", "MemberAdded"]
    assert stream_types(settings, user_stream(email)) == ["UserRegistered"]


def test_a_different_workspace_slug_is_a_different_tenant_for_the_same_user(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    email = f"{unique('bob')}@example.com"

    one = mint(environ, capsys, settings, "--email", email, "--workspace", unique("one"))
    two = mint(environ, capsys, settings, "--email", email, "--workspace", unique("two"))

    assert one.workspace_id != two.workspace_id
    assert one.subject == two.subject


def test_a_second_user_joins_an_existing_workspace_with_the_role_asked_for(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    slug = unique("team")
    mint(environ, capsys, settings, "--email", f"{unique('owner')}@example.com", "--workspace", slug)

    joined = mint(environ, capsys, settings, "--email", f"{unique('carol')}@example.com", "--workspace", slug,
                  "--role", "analyst")

    store = EventStore(settings, pool_size=1)
    try:
        members = [e for e in store.load(workspace_stream(slug)) if isinstance(e, MemberAdded)]
    finally:
        store.close()
    assert [(m.user_id, m.role) for m in members][-1] == (joined.subject, Role.ANALYST)
    assert joined.role == "analyst"
    assert joined.scopes == SCOPES_BY_ROLE[Role.ANALYST]


def test_scopes_asked_for_narrow_the_token(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    principal = mint(environ, capsys, settings, "--email", f"{unique('dan')}@example.com", "--role", "viewer",
                     "--scope", "issues:read", "--scope", "patterns:read,dashboards:read")

    assert principal.scopes == frozenset({"issues:read", "patterns:read", "dashboards:read"})
    assert principal.role == "viewer"


def test_a_first_caller_who_asks_for_a_lesser_role_is_told_they_own_the_new_workspace(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    slug = unique("fresh")
    assert main(["token", "--email", f"{unique('vic')}@example.com", "--workspace", slug, "--role", "viewer"],
                environ) == 0
    captured = capsys.readouterr()
    principal = verify_access_token(settings, captured.out.strip())
    owner_again = mint(environ, capsys, settings, "--email", f"{unique('olga')}@example.com",
                       "--workspace", unique("x"))

    assert "is owner of workspace" in captured.err and "only the viewer role's scopes" in captured.err
    assert principal.scopes == scopes_for(Role.VIEWER)
    assert owner_again.role == "owner" and capsys.readouterr().err == ""


@pytest.mark.parametrize("args", [
    ["--role", "emperor"],
    ["--scope", "issues:teleport"],
    ["--role", "viewer", "--scope", "issues:write"],
    ["--workspace", "Not A Slug"],
])
def test_unknown_roles_scopes_and_bad_slugs_exit_2_with_a_message(
        args: list[str], environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--email", "erin@example.com", *args], environ) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("causeloop token: ")


def test_token_is_refused_in_production(environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    production = {**environ, "ENVIRONMENT": "production", "JWT_SECRET": "a-production-secret-of-at-least-32-bytes"}

    assert main(["token", "--email", "frank@example.com"], production) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "development only" in captured.err


def test_without_database_url_token_uses_the_servers_a_running_up_wrote_down(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_services(data_dir, settings)
    without_url = {key: value for key, value in environ.items() if key != "DATABASE_URL"}

    principal = mint(without_url, capsys, settings, "--email", f"{unique('gina')}@example.com")

    assert principal.role == "owner"


def test_without_database_url_or_a_running_up_token_says_to_start_it(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    without_url = {key: value for key, value in environ.items() if key != "DATABASE_URL"}

    assert main(["token", "--email", "hal@example.com"], without_url) == 1

    assert "start `./dev up` first or set DATABASE_URL" in capsys.readouterr().err


def test_the_installed_command_prints_only_the_token(environ: dict[str, str], settings: Settings) -> None:
    command = Path(sys.executable).parent / "causeloop"

    done = subprocess.run([str(command), "token", "--email", f"{unique('ivy')}@example.com"], env=environ,
                          capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert verify_access_token(settings, done.stdout.strip()).role == "owner"
    assert done.stdout.strip().count("\n") == 0


def test_clerk_prints_a_development_session_token_signed_by_the_local_issuer(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    email = f"{unique('jo')}@example.com"

    assert main(["token", "--clerk", "--email", email], environ) == 0
    first = capsys.readouterr().out.strip()
    assert main(["token", "--clerk", "--email", email.upper()], environ) == 0
    second = capsys.readouterr().out.strip()

    jwks = json.loads((tmp_path / "data" / "dev-clerk-jwks.json").read_text())
    header = jwt.get_unverified_header(first)
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(first, key.key, algorithms=["RS256"], options={"require": ["exp", "iat", "sub", "iss"]})
    assert header["alg"] == "RS256" and claims["email"] == email.lower()
    assert claims["sub"] == jwt.decode(second, options={"verify_signature": False})["sub"], "stable per email"
    assert claims["sub"].startswith("user_dev_")


def test_clerk_is_refused_in_production(environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    production = {**environ, "ENVIRONMENT": "production", "JWT_SECRET": "a-production-secret-of-at-least-32-bytes"}

    assert main(["token", "--clerk", "--email", "kim@example.com"], production) == 2

    captured = capsys.readouterr()
    assert captured.out == "" and "development only" in captured.err
