"""`causeloop provision` / `offboard`: one transaction, duplicate slugs refused, existing owners reused."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapters.event_store import EventStore
from adapters.settings import Settings
from cli.main import main
from commands.identity import user_stream, workspace_stream
from commands.provisioning import DuplicateOrganization, Provision, ProvisioningCommands, organization_stream
from domain.identity.events import OrganizationProvisioned, Plan, WorkspaceProvisioned
from domain.ids import render

pytestmark = pytest.mark.postgres


@pytest.fixture
def environ(settings: Settings, tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema,
            "JWT_SECRET": settings.jwt_secret, "DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def store(settings: Settings) -> Any:
    store = EventStore(settings, pool_size=1)
    yield store
    store.close()


def slug() -> str:
    return f"acme-{uuid.uuid4().hex[:8]}"


def provision(environ: dict[str, str], capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["provision", *args], environ) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result: dict[str, Any] = json.loads(out)
    return result


def test_provision_creates_organization_workspace_and_owner_and_prints_their_ids(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], store: EventStore) -> None:
    org = slug()

    ids = provision(environ, capsys, "--org-name", "Acme Inc", "--org-slug", org, "--owner-email",
                    f"ceo@{org}.example", "--plan", "growth", "--seats", "25", "--timezone", "Europe/Paris")

    assert set(ids) == {"organization_id", "workspace_id", "owner_user_id", "membership_id"}
    assert ids["organization_id"] == render("org", organization_stream(org))
    assert ids["workspace_id"] == render("ws", workspace_stream(org))
    assert ids["owner_user_id"] == render("usr", user_stream(f"ceo@{org}.example"))
    assert ids["membership_id"].startswith("mem_")
    workspace = store.load(workspace_stream(org))
    assert [type(e).__name__ for e in workspace] == ["WorkspaceProvisioned", "MemberAdded"]
    provisioned = workspace[0]
    assert isinstance(provisioned, WorkspaceProvisioned)
    assert (provisioned.name, provisioned.plan, provisioned.seats_total, provisioned.timezone) == (
        "Acme Inc", Plan.GROWTH, 25, "Europe/Paris")
    assert getattr(workspace[1], "role", None) == "owner"
    (org_event,) = store.load(organization_stream(org))
    assert isinstance(org_event, OrganizationProvisioned) and org_event.seats_total == 25
    assert [type(e).__name__ for e in store.load(user_stream(f"ceo@{org}.example"))] == ["UserRegistered"]


def test_defaults_are_free_ten_seats_utc_and_the_org_name(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], store: EventStore) -> None:
    org = slug()

    provision(environ, capsys, "--org-name", "Beta", "--org-slug", org, "--owner-email", f"o@{org}.example")

    provisioned = store.load(workspace_stream(org))[0]
    assert isinstance(provisioned, WorkspaceProvisioned)
    assert (provisioned.name, provisioned.plan, provisioned.seats_total, provisioned.timezone) == (
        "Beta", Plan.FREE, 10, "UTC")


def test_a_duplicate_org_slug_is_refused_with_a_clear_error_and_exit_code_1(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], store: EventStore) -> None:
    org = slug()
    provision(environ, capsys, "--org-name", "Acme", "--org-slug", org, "--owner-email", f"a@{org}.example")

    code = main(["provision", "--org-name", "Other", "--org-slug", org.upper(), "--owner-email", "b@x.example"],
                environ)

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert f"an organization with slug '{org}' already exists" in captured.err
    assert len(store.load(organization_stream(org))) == 1
    assert store.load(user_stream("b@x.example")) == []


def test_an_existing_user_with_the_owner_email_is_reused(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], store: EventStore) -> None:
    first, second, email = slug(), slug(), f"founder-{uuid.uuid4().hex[:6]}@example.com"
    one = provision(environ, capsys, "--org-name", "One", "--org-slug", first, "--owner-email", email)

    two = provision(environ, capsys, "--org-name", "Two", "--org-slug", second, "--owner-email", email.upper())

    assert two["owner_user_id"] == one["owner_user_id"]
    assert [type(e).__name__ for e in store.load(user_stream(email))] == ["UserRegistered"]


@pytest.mark.parametrize(("args", "reason"), [
    (["--timezone", "Mars/Olympus"], "timezone"), (["--seats", "0"], "seats_total"),
    (["--org-slug", "-x-"], "org_slug"), (["--owner-email", "nobody"], "email"),
])
def test_refused_values_exit_1_naming_the_parameter(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str], args: list[str], reason: str) -> None:
    base = {"--org-name": "Acme", "--org-slug": slug(), "--owner-email": "x@example.com"}
    merged = {**base, **dict(zip(args[::2], args[1::2], strict=True))}

    code = main(["provision", *[f"{flag}={value}" for flag, value in merged.items()]], environ)

    assert code == 1
    assert reason in capsys.readouterr().err


def test_the_append_is_one_transaction_a_clash_on_any_stream_writes_nothing(
        settings: Settings, store: EventStore) -> None:
    org = slug()
    ProvisioningCommands(store).provision(Provision(org_name="First", org_slug=org, owner_email=f"a@{org}.example"))

    class Forgetful(EventStore):
        """Pretends the organization and workspace do not exist yet, as a racing second operator would see it."""

        def load(self, stream_id: uuid.UUID, up_to: int | None = None) -> list[Any]:
            if stream_id in (organization_stream(org), workspace_stream(org)):
                return []
            return super().load(stream_id, up_to)

    racing = Forgetful(settings, pool_size=1)
    try:
        with pytest.raises(DuplicateOrganization):
            ProvisioningCommands(racing).provision(Provision(org_name="Second", org_slug=org,
                                                             owner_email=f"new-{org}@example.test"))
    finally:
        racing.close()

    assert store.load(user_stream(f"new-{org}@example.test")) == [], "the new owner was not registered either"


def test_offboarding_an_unknown_slug_exits_1_and_twice_is_refused(
        environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    org = slug()
    provision(environ, capsys, "--org-name", "Acme", "--org-slug", org, "--owner-email", f"a@{org}.example")

    unknown = main(["offboard", "--org-slug", slug(), "--wait-seconds", "0"], environ)
    capsys.readouterr()
    first = main(["offboard", "--org-slug", org, "--wait-seconds", "0"], environ)
    out = json.loads(capsys.readouterr().out)
    second = main(["offboard", "--org-slug", org, "--wait-seconds", "0"], environ)

    assert (unknown, first, second) == (1, 0, 1)
    assert out == {"organization_id": render("org", organization_stream(org)),
                   "workspace_ids": [render("ws", workspace_stream(org))]}
    assert "already offboarded" in capsys.readouterr().err


def test_dev_tokens_respect_seats_and_offboarding(environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    org = slug()
    provision(environ, capsys, "--org-name", "Tiny", "--org-slug", org, "--owner-email", f"o@{org}.example",
              "--seats", "2")
    assert main(["token", "--email", f"a@{org}.example", "--workspace", org, "--role", "viewer"], environ) == 0
    capsys.readouterr()

    full = main(["token", "--email", f"b@{org}.example", "--workspace", org, "--role", "viewer"], environ)
    full_err = capsys.readouterr().err
    main(["offboard", "--org-slug", org, "--wait-seconds", "0"], environ)
    capsys.readouterr()
    gone = main(["token", "--email", f"a@{org}.example", "--workspace", org, "--role", "viewer"], environ)

    assert (full, gone) == (2, 2)
    assert "seats are taken" in full_err
    assert "offboarded" in capsys.readouterr().err
