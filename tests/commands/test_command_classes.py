"""Every command class on the in-memory store: no services, milliseconds. The same classes run on Postgres behind
the API in tests/e2e; here each one's decisions and answers are checked through the one command runner."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from adapters.event_store import EventStore
from adapters.secret_box import SecretBox
from commands.caller import Caller
from commands.credentials import CredentialCommands, DuplicateName
from commands.errors import NotFound, StaleVersion
from commands.group_commit import GroupCommitter
from commands.identity import EnsureMembership, IdentityCommands
from commands.members import MemberCommands, joined_of, membership_id
from commands.mfa import MfaCommands
from commands.provisioning import DuplicateOrganization, Provision, ProvisioningCommands
from commands.runner import CommandRunner
from commands.scim import ScimCommands
from commands.signin import RefreshRejected, SignInCommands, session_of
from commands.workspace_settings import WorkspaceSettingsCommands, settings_of
from domain.credentials.events import TokenKind
from domain.credentials.grants import Grant
from domain.events import Actor, ActorKind
from domain.identity.errors import AlreadyMember
from domain.identity.events import InvitationSent
from domain.identity.roles import ALL_SCOPES, Role
from domain.identity.user import ProfileEdit
from domain.identity.workspace import MemberStatus
from domain.ids import UserId, WorkspaceId, render
from domain.mfa.factor import FactorStatus
from domain.workspace_settings.events import OnboardingStep
from domain.workspace_settings.settings import AiEdit
from tests.builders import T1

OPERATOR = Actor(kind=ActorKind.SYSTEM, id="tests")
KEY = b"k" * 32


class World:
    """An in-memory store with one workspace whose owner is `owner`, and a runner over it."""

    def __init__(self) -> None:
        self.store = EventStore(None)
        self.committer = GroupCommitter(self.store)
        self.runner = CommandRunner(self.store, self.committer, clock=lambda: T1)
        self.slug = f"ws-{uuid.uuid4().hex[:8]}"
        owner = IdentityCommands(self.store, actor=OPERATOR, clock=lambda: T1).ensure_membership(
            EnsureMembership(email=f"owner@{self.slug}.test", workspace_slug=self.slug, role=Role.OWNER))
        self.workspace_id = owner.workspace_id
        self.owner = self.caller(owner.user_id)

    def caller(self, user_id: str) -> Caller:
        return Caller(workspace_id=WorkspaceId(self.workspace_id), actor=Actor(kind=ActorKind.USER, id=user_id))

    def join(self, email: str, role: Role) -> str:
        return IdentityCommands(self.store, actor=OPERATOR, clock=lambda: T1).ensure_membership(
            EnsureMembership(email=email, workspace_slug=self.slug, role=role)).user_id

    def close(self) -> None:
        self.committer.close()
        self.store.close()


@pytest.fixture
def world() -> Iterator[World]:
    built = World()
    yield built
    built.close()


def test_identity_provisions_a_workspace_once_and_joins_later_members_with_their_role(world: World) -> None:
    member = world.join(f"ana@{world.slug}.test", Role.ANALYST)
    again = IdentityCommands(world.store, actor=OPERATOR).ensure_membership(
        EnsureMembership(email=f"ana@{world.slug}.test", workspace_slug=world.slug, role=Role.VIEWER))

    assert again.user_id == member and again.role is Role.ANALYST


def test_provisioning_refuses_a_second_organization_of_the_same_slug(world: World) -> None:
    commands = ProvisioningCommands(world.store, clock=lambda: T1)
    done = commands.provision(Provision(org_name="Acme", org_slug="acme-1", owner_email="o@acme.test"))

    with pytest.raises(DuplicateOrganization):
        commands.provision(Provision(org_name="Acme again", org_slug="acme-1", owner_email="p@acme.test"))
    assert done.position > 0 and commands.offboard("acme-1").workspace_ids == [done.workspace_id]


async def test_members_change_role_and_status_and_leave(world: World) -> None:
    commands = MemberCommands(world.runner)
    member = membership_id(world.workspace_id, world.join(f"bo@{world.slug}.test", Role.VIEWER))

    changed = await commands.update(member, Role.ANALYST, MemberStatus.SUSPENDED, Role.OWNER, world.owner)
    removed = await commands.remove(member, Role.OWNER, world.owner)

    assert changed.position > 0 and removed.version == changed.version + 1
    with pytest.raises(NotFound):
        await commands.remove(member, Role.OWNER, world.owner)


async def test_an_invitation_reveals_its_token_once_and_joins_the_invitee(world: World) -> None:
    commands = MemberCommands(world.runner)
    invitee = world.caller(render("usr", uuid.uuid4()))
    sent = await commands.invite(f"cy@{world.slug}.test", Role.ANALYST, Role.OWNER, world.owner)
    resent = await commands.resend(render("inv", sent.stream_id), world.owner)
    assert sent.revealed and resent.revealed and sent.revealed != resent.revealed
    assert {event.email for event in resent.own(InvitationSent)} == {f"cy@{world.slug}.test"}

    user = world.join(f"cy-user@{world.slug}.test", Role.VIEWER)  # a user exists, but with another email
    with pytest.raises(NotFound):
        await commands.accept(resent.revealed, invitee)
    with pytest.raises(AlreadyMember):
        await commands.invite(f"cy-user@{world.slug}.test", Role.ANALYST, Role.OWNER, world.owner)
    assert user.startswith("usr_")


async def test_join_invited_registers_the_invitee_and_joins_in_one_append(world: World) -> None:
    commands = MemberCommands(world.runner)
    sent = await commands.invite(f"di@{world.slug}.test", Role.ANALYST, Role.OWNER, world.owner)

    joined = joined_of(await commands.join_invited(sent.revealed or "", email=f"di@{world.slug}.test",
                                                   clerk_user_id="user_clerk_1", workspace_id=None,
                                                   caller=world.owner))

    assert (joined.workspace_id, joined.role) == (world.workspace_id, Role.ANALYST)
    assert joined.membership_id == membership_id(world.workspace_id, joined.user_id)


async def test_a_profile_edit_bumps_the_users_version(world: World) -> None:
    result = await MemberCommands(world.runner).update_profile(ProfileEdit(name="Ada"), world.owner)

    assert result.version == 2 and result.position > 0


async def test_a_token_reveals_its_secret_once_and_a_live_name_is_taken(world: World) -> None:
    commands = CredentialCommands(world.runner)
    grant = Grant(scopes=frozenset(ALL_SCOPES))
    owner = world.owner.actor.id
    created = await commands.create_token(world.owner, kind=TokenKind.PERSONAL, owner_id=owner, name="ci",
                                          scopes=("issues:read",), expires_at=T1 + timedelta(days=1), grant=grant)

    with pytest.raises(DuplicateName):
        await commands.create_token(world.owner, kind=TokenKind.PERSONAL, owner_id=owner, name="CI",
                                    scopes=("issues:read",), expires_at=None, grant=grant)
    rotated = await commands.rotate_token(world.owner, render("tok", created.stream_id), kinds=[TokenKind.PERSONAL],
                                          owner_id=owner, grant=grant)
    revoked = await commands.revoke_token(world.owner, render("tok", created.stream_id), kinds=[TokenKind.PERSONAL],
                                          owner_id=owner)
    renamed = await commands.create_token(world.owner, kind=TokenKind.PERSONAL, owner_id=owner, name="ci",
                                          scopes=("issues:read",), expires_at=None, grant=grant)

    assert created.revealed and rotated.revealed and created.revealed != rotated.revealed
    assert (rotated.version, revoked.version) == (2, 3)
    assert renamed.stream_id != created.stream_id  # the name is free again once its token is revoked


async def test_a_service_account_is_created_edited_and_deleted_with_its_tokens(world: World) -> None:
    commands = CredentialCommands(world.runner)
    account = await commands.create_service_account(world.owner, name="bot", description="", role=Role.VIEWER,
                                                    granter=Role.OWNER)
    account_id = render("sa", account.stream_id)
    token = await commands.issue_service_account_token(world.owner, account_id, name="t", scopes=("issues:read",),
                                                       expires_at=None, grant=Grant(scopes=frozenset(ALL_SCOPES)))

    deleted = await commands.delete_service_account(world.owner, account_id, Role.OWNER,
                                                    [render("tok", token.stream_id)])

    assert deleted.version == 2 and token.revealed
    with pytest.raises(NotFound):
        await commands.service_account(world.owner, account_id)


async def test_settings_refuse_a_stale_version_and_record_onboarding(world: World) -> None:
    commands = WorkspaceSettingsCommands(world.runner)
    first = await commands.update_ai(AiEdit(auto_link=False), world.owner, expected_version=0)

    with pytest.raises(StaleVersion):
        await commands.update_ai(AiEdit(auto_link=True), world.owner, expected_version=0)
    step = await commands.complete_onboarding_step(OnboardingStep.INVITE_TEAM, world.owner)

    assert settings_of(first).ai.auto_link is False
    assert OnboardingStep.INVITE_TEAM in settings_of(step).completed_steps


async def test_mfa_enrols_with_a_sealed_secret_then_activates_and_removes(world: World) -> None:
    commands = MfaCommands(world.runner, lambda: SecretBox(KEY, "mfa-totp"))
    user = UserId(world.owner.actor.id)

    enrolled = await commands.enrol(user, world.owner)
    factor = await commands.factor(user)
    await commands.activate(user, world.owner)
    active = await commands.factor(user)
    await commands.remove(user, world.owner)

    assert factor is not None and enrolled.revealed == commands.secret_of(factor)
    assert active is not None and active.status is FactorStatus.ACTIVE
    assert (removed := await commands.factor(user)) is not None and removed.status is FactorStatus.REMOVED


async def test_scim_provisions_suspends_and_re_roles(world: World) -> None:
    commands = ScimCommands(world.runner)
    done = await commands.provision(world.owner, email=f"ed@{world.slug}.test", name="Ed", active=True)
    user_id = render("usr", done.stream_id)

    suspended = await commands.set_active(world.owner, user_id, False)
    roled = await commands.set_roles(world.owner, [(user_id, Role.ANALYST)])

    assert suspended.version < roled.version and done.created
    with pytest.raises(NotFound):
        await commands.set_active(world.owner, render("usr", uuid.uuid4()), True)


async def test_a_session_rotates_its_refresh_token_and_a_reused_one_revokes_the_family(world: World) -> None:
    commands = SignInCommands(world.runner)
    started = await commands.start_session(UserId(world.owner.actor.id), mfa=False, caller=world.owner)
    session_id = render("ses", started.stream_id)

    rotated = await commands.rotate(session_id, started.revealed or "", world.owner)
    with pytest.raises(RefreshRejected) as reused:
        await commands.rotate(session_id, started.revealed or "", world.owner)

    assert rotated.revealed and rotated.revealed != started.revealed and session_of(rotated).version == 2
    assert reused.value.position > rotated.position
