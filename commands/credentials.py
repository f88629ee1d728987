"""Credential commands: API tokens (personal, service-account, SCIM) and service accounts.

A token's name is unique among its owner's live tokens. That is enforced by the event store's primary key:
the n-th token of a name lives in the stream keyed (workspace, owner, name, n), so two concurrent creates of
the same name collide, and the loser finds the winner's live token (409).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import cast
from uuid import UUID

import msgspec

from adapters.event_store import EventStore
from adapters.ids import keyed_uuid, new_uuid
from adapters.secrets import hash_secret, new_secret
from commands.caller import Caller
from commands.errors import NotFound
from commands.group_commit import ConcurrencyConflict, GroupCommitter
from domain.credentials import service_account as accounts
from domain.credentials import token as tokens
from domain.credentials.events import (
    AnyApiTokenEvent,
    AnyServiceAccountEvent,
    ApiTokenEvent,
    ServiceAccountEvent,
    TokenKind,
)
from domain.credentials.grants import Grant
from domain.credentials.service_account import ServiceAccount, ServiceAccountEdit
from domain.credentials.token import ApiToken
from domain.events import DomainEvent
from domain.identity.roles import Role
from domain.ids import parse, render

MAX_ATTEMPTS = 3
SCIM_OWNER = "scim"
"""The owner key that SCIM tokens (which act for no one) share for name uniqueness."""

class DuplicateName(Exception):
    """The owner already has a live token of this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a token named {name!r} already exists")
        self.name = name


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """What a command did: the stream's events so far (to fold the response) and the position to wait for."""

    id: str
    position: int
    stream: tuple[DomainEvent, ...] = ()


class IssuedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A created or rotated token: the secret is here once, and never stored."""

    accepted: Accepted
    secret: str


def utc_now() -> datetime:
    return datetime.now(UTC)


class CredentialCommands:
    def __init__(self, store: EventStore, committer: GroupCommitter, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._committer = committer
        self._clock = clock

    # -- tokens -------------------------------------------------------------------------------------------

    async def create_token(self, caller: Caller, *, kind: TokenKind, owner_id: str | None, name: str,
                           scopes: tuple[str, ...], expires_at: datetime | None, grant: Grant) -> IssuedToken:
        """`scopes` are cleaned (domain.credentials.grants.clean_scopes); `grant` is what the caller's credential
        may hand on."""
        clean = tokens.clean_name(name)
        for _ in range(MAX_ATTEMPTS):
            stream_id = await self._free_name_slot(caller, owner_id, clean)
            secret = new_secret(kind)
            event = tokens.create_token(token_id=stream_id, meta=caller.meta(self._clock()), kind=kind,
                                        owner_id=owner_id, name=clean, scopes=scopes, secret_hash=hash_secret(secret),
                                        expires_at=expires_at, grant=grant)
            try:
                return IssuedToken(accepted=await self._accept("tok", stream_id, [event], []), secret=secret)
            except ConcurrencyConflict:
                continue  # someone took this slot meanwhile: look again (their token may be live: 409)
        raise ConcurrencyConflict("token names changed concurrently; retry")

    async def rotate_token(self, caller: Caller, token_id: str, *, kinds: Sequence[TokenKind],
                           owner_id: str | None, grant: Grant) -> IssuedToken:
        token, history = await self._token(caller, token_id, kinds, owner_id)
        secret = new_secret(token.kind)
        event = tokens.rotate_token(token, hash_secret(secret), caller.meta(self._clock()), grant)
        return IssuedToken(accepted=await self._accept("tok", token.id, [event], history), secret=secret)

    async def revoke_token(self, caller: Caller, token_id: str, *, kinds: Sequence[TokenKind],
                           owner_id: str | None) -> Accepted:
        """`owner_id` None: any owner's token of these kinds (an admin); otherwise only that owner's."""
        token, history = await self._token(caller, token_id, kinds, owner_id)
        return await self._accept("tok", token.id, tokens.revoke_token(token, caller.meta(self._clock())), history)

    async def _free_name_slot(self, caller: Caller, owner_id: str | None, name: str) -> UUID:
        owner_key = owner_id or SCIM_OWNER
        now = self._clock()
        n = 0
        while True:
            stream_id = keyed_uuid(caller.workspace_id, "api-token-name", owner_key, name.casefold(), str(n))
            token = tokens.project_token(None, await self._load_token(stream_id))
            if token is None:
                return stream_id
            if tokens.is_live(token, now):
                raise DuplicateName(name)
            n += 1

    async def _token(self, caller: Caller, token_id: str, kinds: Sequence[TokenKind],
                     owner_id: str | None) -> tuple[ApiToken, list[AnyApiTokenEvent]]:
        stream_id = parse("tok", token_id)
        history = [] if stream_id is None else await self._load_token(stream_id)
        token = tokens.project_token(None, history)
        if (token is None or token.workspace_id != caller.workspace_id or token.kind not in kinds
                or (owner_id is not None and token.owner_id != owner_id)):
            raise NotFound("token", token_id)
        return token, history

    # -- service accounts ---------------------------------------------------------------------------------

    async def create_service_account(self, caller: Caller, *, name: str, description: str, role: Role,
                                     granter: Role) -> Accepted:
        stream_id = new_uuid()
        event = accounts.create_service_account(account_id=stream_id, meta=caller.meta(self._clock()), name=name,
                                                description=description, role=role, granter=granter)
        return await self._accept("sa", stream_id, [event], [])

    async def update_service_account(self, caller: Caller, account_id: str, edit: ServiceAccountEdit,
                                     granter: Role) -> Accepted:
        for _ in range(MAX_ATTEMPTS):
            account, history = await self.service_account(caller, account_id)
            events = accounts.update_service_account(account, edit, caller.meta(self._clock()), granter)
            try:
                return await self._accept("sa", account.id, events, history)
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict("service account changed concurrently; retry")

    async def delete_service_account(self, caller: Caller, account_id: str, granter: Role,
                                     token_ids: Sequence[str]) -> Accepted:
        """Deletes the account and, in the same transaction, revokes `token_ids` (its live tokens as read).

        A token created meanwhile can never authenticate anyway: authentication also requires the account.
        """
        account, history = await self.service_account(caller, account_id)
        meta = caller.meta(self._clock())
        events: list[DomainEvent] = [*accounts.delete_service_account(account, meta, granter)]
        for token_id in token_ids:
            try:
                token, _ = await self._token(caller, token_id, [TokenKind.SERVICE_ACCOUNT], account_id)
            except NotFound:
                continue
            events.extend(tokens.revoke_token(token, meta, reason="service_account_deleted"))
        return await self._accept("sa", account.id, events, history)

    async def issue_service_account_token(self, caller: Caller, account_id: str, *, name: str,
                                          scopes: tuple[str, ...], expires_at: datetime | None,
                                          grant: Grant) -> IssuedToken:
        account, _ = await self.service_account(caller, account_id)
        return await self.create_token(caller, kind=TokenKind.SERVICE_ACCOUNT, owner_id=render("sa", account.id),
                                       name=name, scopes=scopes, expires_at=expires_at, grant=grant)

    async def service_account(self, caller: Caller, account_id: str
                              ) -> tuple[ServiceAccount, list[AnyServiceAccountEvent]]:
        """The live account in the caller's workspace, or NotFound (deleted ones and other workspaces' too)."""
        stream_id = parse("sa", account_id)
        history = [] if stream_id is None else await self._load_account(stream_id)
        account = accounts.project_service_account(None, history)
        if account is None or account.deleted or account.workspace_id != caller.workspace_id:
            raise NotFound("service account", account_id)
        return account, history

    # -- plumbing -----------------------------------------------------------------------------------------

    async def _load_token(self, stream_id: UUID) -> list[AnyApiTokenEvent]:
        stored = await asyncio.to_thread(self._store.load, stream_id)
        return cast(list[AnyApiTokenEvent], [event for event in stored if isinstance(event, ApiTokenEvent)])

    async def _load_account(self, stream_id: UUID) -> list[AnyServiceAccountEvent]:
        stored = await asyncio.to_thread(self._store.load, stream_id)
        return cast(list[AnyServiceAccountEvent], [e for e in stored if isinstance(e, ServiceAccountEvent)])

    async def _accept(self, prefix: str, stream_id: UUID, events: Sequence[DomainEvent],
                      history: Sequence[DomainEvent]) -> Accepted:
        positions = await asyncio.wrap_future(self._committer.submit(events))
        own = [event for event in events if event.originator_id == stream_id]
        return Accepted(id=render(prefix, stream_id), position=max(positions, default=0),
                        stream=(*history, *own))
