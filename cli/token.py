"""`causeloop token`: a development access token for a local user in a local workspace."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from adapters.dev_issuer import DevIssuer
from adapters.event_store import EventStore
from adapters.settings import Settings
from adapters.tokens import mint_access_token
from cli import services
from commands.identity import EnsureMembership, IdentityCommands, Membership
from domain.events import Actor, ActorKind
from domain.identity.roles import ALL_SCOPES, SCOPES_BY_ROLE, Role, scopes_for

CLI_ACTOR = Actor(kind=ActorKind.SYSTEM, id="causeloop-cli")


class UsageError(ValueError):
    """Arguments the command cannot act on (exit code 2, as argparse uses)."""


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise UsageError(f"unknown role {text!r}; roles: {', '.join(Role)}") from None


def parse_scopes(role: Role, requested: Sequence[str] | None) -> frozenset[str] | None:
    """The scopes asked for (None: all of the role's). Never silently narrower than asked: unknown or
    ungranted scopes are an error, so a token never fails later with a puzzling 403."""
    if not requested:
        return None
    wanted = frozenset(scope for item in requested for scope in item.replace(",", " ").split())
    unknown = sorted(wanted - ALL_SCOPES)
    if unknown:
        raise UsageError(f"unknown scope(s): {', '.join(unknown)}")
    refused = sorted(wanted - SCOPES_BY_ROLE[role])
    if refused:
        raise UsageError(f"role {role} does not grant: {', '.join(refused)}")
    return wanted


def issue_dev_clerk_token(settings: Settings, *, email: str, workspace_slug: str, role: Role,
                          invitee: bool = False) -> str:
    """A Clerk-style session token from the local development issuer (the user is registered and a member of
    `workspace_slug` first, as for an access token, so the exchange finds them). `invitee`: register nothing,
    like a person who has only an invitation (they get in with the exchange's `invitation_token`)."""
    if settings.is_production:
        raise UsageError("is for development only and is refused when ENVIRONMENT=production")
    if not invitee:
        _ensure_membership(settings, email, workspace_slug, role)
    party = min(settings.authorized_parties) if settings.authorized_parties else None
    return DevIssuer(settings.data_dir).mint(email, audience=settings.clerk_audience, authorized_party=party)


def _ensure_membership(settings: Settings, email: str, workspace_slug: str, role: Role) -> Membership:
    store = EventStore(services.resolve(settings), pool_size=1)
    try:
        return IdentityCommands(store, actor=CLI_ACTOR).ensure_membership(
            EnsureMembership(email=email, workspace_slug=workspace_slug, role=role))
    finally:
        store.close()


def issue_dev_token(settings: Settings, *, email: str, workspace_slug: str, role: Role,
                    scopes: frozenset[str] | None) -> str:
    """Registers the user and provisions the workspace on first use; later calls reuse both."""
    if settings.is_production:
        raise UsageError("is for development only and is refused when ENVIRONMENT=production")
    membership = _ensure_membership(settings, email, workspace_slug, role)
    if membership.role is not role:
        print(f"causeloop token: {email} is {membership.role.value} of workspace {workspace_slug!r} (the first member "
              f"of a new workspace owns it); this token carries only the {role.value} role's scopes. For a member who "
              f"is only {role.value}, ask with another --email.", file=sys.stderr)
    return mint_access_token(settings, subject=membership.user_id, workspace_id=membership.workspace_id,
                             role=role.value, scopes=scopes_for(role, scopes))
