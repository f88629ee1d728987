"""Credential decisions: token lifecycle, scope and role grants, service accounts (pure, no services)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from domain.credentials import grants
from domain.credentials import service_account as accounts
from domain.credentials import token as tokens
from domain.credentials.events import TokenKind
from domain.credentials.service_account import ServiceAccountEdit
from domain.errors import Forbidden, InvalidTransition, InvalidValue
from domain.identity.roles import ALL_SCOPES, SCOPES_BY_ROLE, Role
from tests.builders import T0, T1, T2, meta

TOKEN = uuid.UUID("01949a3c-0000-7000-8000-0000000000a1")
ANYTHING = grants.Grant(scopes=ALL_SCOPES)
"""A maker that may hand on every scope, for as long as it likes (a person's own sign-in with every scope)."""


def created(expires_in: timedelta | None = None) -> tokens.ApiToken:
    event = tokens.create_token(token_id=TOKEN, meta=meta(T0), kind=TokenKind.PERSONAL, owner_id="usr_x", name=" ci ",
                                scopes=("issues:read",), secret_hash="a" * 64,
                                expires_at=None if expires_in is None else T0 + expires_in, grant=ANYTHING)
    token = tokens.project_token(None, [event])
    assert token is not None
    return token


def test_a_token_name_is_trimmed_and_must_not_be_blank() -> None:
    assert created().name == "ci"
    with pytest.raises(InvalidValue):
        tokens.create_token(token_id=TOKEN, meta=meta(T0), kind=TokenKind.PERSONAL, owner_id="usr_x", name="  ",
                            scopes=(), secret_hash="a" * 64, expires_at=None, grant=ANYTHING)


def test_an_expiry_must_be_in_the_future() -> None:
    with pytest.raises(InvalidValue):
        tokens.create_token(token_id=TOKEN, meta=meta(T1), kind=TokenKind.PERSONAL, owner_id="usr_x", name="ci",
                            scopes=(), secret_hash="a" * 64, expires_at=T0, grant=ANYTHING)


def test_a_revoked_token_never_rotates_and_revoking_again_records_nothing() -> None:
    token = created()
    [revoked] = tokens.revoke_token(token, meta(T1))
    after = tokens.evolve(token, revoked)

    assert tokens.revoke_token(after, meta(T2)) == []
    with pytest.raises(InvalidTransition):
        tokens.rotate_token(after, "b" * 64, meta(T2), ANYTHING)


def test_an_expired_token_does_not_rotate() -> None:
    token = created(expires_in=timedelta(minutes=30))

    assert tokens.rotate_token(token, "b" * 64, meta(T0), ANYTHING).secret_hash == "b" * 64
    with pytest.raises(InvalidTransition):
        tokens.rotate_token(token, "b" * 64, meta(T1), ANYTHING)


def test_a_new_token_never_holds_more_scopes_or_a_longer_life_than_its_maker() -> None:
    maker = grants.Grant(scopes=frozenset({"issues:read", "api_tokens:write"}), expires_at=T1)

    def make(scopes: tuple[str, ...], expires_at: datetime | None) -> None:
        tokens.create_token(token_id=TOKEN, meta=meta(T0), kind=TokenKind.PERSONAL, owner_id="usr_x", name="ci",
                            scopes=scopes, secret_hash="a" * 64, expires_at=expires_at, grant=maker)

    make(("issues:read",), T1)
    with pytest.raises(Forbidden) as wider:
        make(("issues:read", "issues:write"), T1)
    with pytest.raises(Forbidden) as forever:
        make(("issues:read",), None)
    with pytest.raises(Forbidden) as longer:
        make(("issues:read",), T2)
    assert wider.value.details == {"field": "scopes", "scope": "issues:write"}
    assert forever.value.details["field"] == longer.value.details["field"] == "expires_at"


def test_rotating_needs_every_scope_of_the_token_and_a_life_at_least_as_long() -> None:
    token = created()  # issues:read, never expires

    assert tokens.rotate_token(token, "b" * 64, meta(T0), grants.Grant(scopes=frozenset({"issues:read"})))
    with pytest.raises(Forbidden):
        tokens.rotate_token(token, "b" * 64, meta(T0), grants.Grant(scopes=frozenset({"patterns:read"})))
    with pytest.raises(Forbidden):
        tokens.rotate_token(token, "b" * 64, meta(T0), grants.Grant(scopes=frozenset({"issues:read"}), expires_at=T2))


def test_scopes_must_be_known_and_held() -> None:
    held = SCOPES_BY_ROLE[Role.ANALYST]

    assert grants.clean_scopes([" issues:write", "issues:read", "issues:read"], held) == ("issues:read",
                                                                                          "issues:write")
    with pytest.raises(InvalidValue):
        grants.clean_scopes(["issues:delete"], held)
    with pytest.raises(Forbidden):
        grants.clean_scopes(["members:admin"], held)
    with pytest.raises(InvalidValue):
        grants.clean_scopes([], held)


def test_nobody_grants_a_role_above_their_own_in_the_shared_role_order() -> None:
    assert grants.can_grant(Role.TENANT_ADMIN, Role.ANALYST) and grants.can_grant(Role.TENANT_ADMIN, Role.TENANT_ADMIN)
    assert grants.can_grant(Role.TENANT_ADMIN, Role.COMPLIANCE_ADMIN)  # side roles rank below tenant_admin
    assert not grants.can_grant(Role.TENANT_ADMIN, Role.OWNER)
    assert not grants.can_grant(Role.ANALYST, Role.SECURITY_ADMIN)


def test_every_scope_is_in_exactly_one_catalogue_tab() -> None:
    listed = [scope for scopes in grants.catalogue().values() for scope in scopes]

    assert sorted(listed) == sorted(set(listed))
    assert set(listed) == set().union(*SCOPES_BY_ROLE.values())
    assert list(grants.catalogue()) == ["Data", "Integrations", "Workspace", "AI & Reports", "Admin"]


def test_a_service_account_role_change_needs_both_roles_within_the_editors_own() -> None:
    event = accounts.create_service_account(account_id=TOKEN, meta=meta(T0), name="CI", description="",
                                            role=Role.TENANT_ADMIN, granter=Role.OWNER)
    account = accounts.project_service_account(None, [event])
    assert account is not None

    with pytest.raises(Forbidden):
        accounts.update_service_account(account, ServiceAccountEdit(role=Role.VIEWER), meta(T1), Role.ANALYST)
    assert accounts.update_service_account(account, ServiceAccountEdit(name="CI"), meta(T1), Role.ANALYST) == []
    [changed] = accounts.update_service_account(account, ServiceAccountEdit(role=Role.VIEWER), meta(T1),
                                                Role.TENANT_ADMIN)
    assert accounts.evolve(account, changed).role == Role.VIEWER  # type: ignore[arg-type]
