"""Credential commands: API tokens (personal, service-account, SCIM) and service accounts.

A token's name is unique among its owner's live tokens. That is enforced by the event store's primary key:
the n-th token of a name lives in the stream keyed (workspace, owner, name, n), so two concurrent creates of
the same name collide, and the loser finds the winner's live token (409).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast
from uuid import UUID

from adapters.ids import keyed_uuid
from adapters.secrets import hash_secret, new_secret
from commands.caller import Caller
from commands.errors import NotFound
from commands.runner import CommandRunner, Context, Decision, Result
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

SCIM_OWNER = "scim"
"""The owner key that SCIM tokens (which act for no one) share for name uniqueness."""

class DuplicateName(Exception):
    """The owner already has a live token of this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a token named {name!r} already exists")
        self.name = name


class CredentialCommands:
    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    # -- tokens -------------------------------------------------------------------------------------------

    async def create_token(self, caller: Caller, *, kind: TokenKind, owner_id: str | None, name: str,
                           scopes: tuple[str, ...], expires_at: datetime | None, grant: Grant) -> Result:
        """`scopes` are cleaned (domain.credentials.grants.clean_scopes); `grant` is what the caller's credential
        may hand on. The secret is the result's `revealed`. A name slot taken meanwhile is a conflict: the runner
        looks again (the winner's token may be live: 409)."""
        clean = tokens.clean_name(name)

        async def deciding(context: Context) -> Decision:
            stream_id = await self._free_name_slot(context, caller, owner_id, clean)
            secret = new_secret(kind)
            event = tokens.create_token(token_id=stream_id, meta=context.meta, kind=kind, owner_id=owner_id,
                                        name=clean, scopes=scopes, secret_hash=hash_secret(secret),
                                        expires_at=expires_at, grant=grant)
            return Decision(stream_id, (), [event], revealed=secret)

        return await self._runner.run(caller, deciding)

    async def rotate_token(self, caller: Caller, token_id: str, *, kinds: Sequence[TokenKind],
                           owner_id: str | None, grant: Grant) -> Result:
        async def deciding(context: Context) -> Decision:
            token, history = await self._token(context, caller, token_id, kinds, owner_id)
            secret = new_secret(token.kind)
            return Decision(token.id, history, [tokens.rotate_token(token, hash_secret(secret), context.meta, grant)],
                            revealed=secret)

        return await self._runner.run(caller, deciding)

    async def revoke_token(self, caller: Caller, token_id: str, *, kinds: Sequence[TokenKind],
                           owner_id: str | None) -> Result:
        """`owner_id` None: any owner's token of these kinds (an admin); otherwise only that owner's."""
        async def deciding(context: Context) -> Decision:
            token, history = await self._token(context, caller, token_id, kinds, owner_id)
            return Decision(token.id, history, tokens.revoke_token(token, context.meta))

        return await self._runner.run(caller, deciding)

    async def _free_name_slot(self, context: Context, caller: Caller, owner_id: str | None, name: str) -> UUID:
        owner_key = owner_id or SCIM_OWNER
        n = 0
        while True:
            stream_id = keyed_uuid(caller.workspace_id, "api-token-name", owner_key, name.casefold(), str(n))
            token = tokens.project_token(None, cast(list[AnyApiTokenEvent],
                                                    await context.load(stream_id, ApiTokenEvent)))
            if token is None:
                return stream_id
            if tokens.is_live(token, context.meta.now):
                raise DuplicateName(name)
            n += 1

    @staticmethod
    async def _token(context: Context, caller: Caller, token_id: str, kinds: Sequence[TokenKind],
                     owner_id: str | None) -> tuple[ApiToken, list[ApiTokenEvent]]:
        stream_id = parse("tok", token_id)
        history = [] if stream_id is None else await context.load(stream_id, ApiTokenEvent)
        token = tokens.project_token(None, cast(list[AnyApiTokenEvent], history))
        if (token is None or token.workspace_id != caller.workspace_id or token.kind not in kinds
                or (owner_id is not None and token.owner_id != owner_id)):
            raise NotFound("token", token_id)
        return token, history

    # -- service accounts ---------------------------------------------------------------------------------

    async def create_service_account(self, caller: Caller, *, name: str, description: str, role: Role,
                                     granter: Role) -> Result:
        async def deciding(context: Context) -> Decision:
            stream_id = context.new_uuid()
            return Decision(stream_id, (), [accounts.create_service_account(
                account_id=stream_id, meta=context.meta, name=name, description=description, role=role,
                granter=granter)])

        return await self._runner.run(caller, deciding)

    async def update_service_account(self, caller: Caller, account_id: str, edit: ServiceAccountEdit,
                                     granter: Role) -> Result:
        async def deciding(context: Context) -> Decision:
            account, history = await self._account(context, caller, account_id)
            return Decision(account.id, history, accounts.update_service_account(account, edit, context.meta,
                                                                                 granter))

        return await self._runner.run(caller, deciding)

    async def delete_service_account(self, caller: Caller, account_id: str, granter: Role,
                                     token_ids: Sequence[str]) -> Result:
        """Deletes the account and, in the same transaction, revokes `token_ids` (its live tokens as read).

        A token created meanwhile can never authenticate anyway: authentication also requires the account.
        """
        async def deciding(context: Context) -> Decision:
            account, history = await self._account(context, caller, account_id)
            events: list[DomainEvent] = [*accounts.delete_service_account(account, context.meta, granter)]
            for token_id in token_ids:
                try:
                    token, _ = await self._token(context, caller, token_id, [TokenKind.SERVICE_ACCOUNT], account_id)
                except NotFound:
                    continue
                events.extend(tokens.revoke_token(token, context.meta, reason="service_account_deleted"))
            return Decision(account.id, history, events)

        return await self._runner.run(caller, deciding)

    async def issue_service_account_token(self, caller: Caller, account_id: str, *, name: str,
                                          scopes: tuple[str, ...], expires_at: datetime | None,
                                          grant: Grant) -> Result:
        account, _ = await self.service_account(caller, account_id)
        return await self.create_token(caller, kind=TokenKind.SERVICE_ACCOUNT, owner_id=render("sa", account.id),
                                       name=name, scopes=scopes, expires_at=expires_at, grant=grant)

    async def service_account(self, caller: Caller, account_id: str
                              ) -> tuple[ServiceAccount, list[ServiceAccountEvent]]:
        """The live account in the caller's workspace, or NotFound (deleted ones and other workspaces' too)."""
        stream_id = parse("sa", account_id)
        history = [] if stream_id is None else await self._runner.load(stream_id, ServiceAccountEvent)
        return self._live(history, caller, account_id), history

    async def _account(self, context: Context, caller: Caller, account_id: str
                       ) -> tuple[ServiceAccount, list[ServiceAccountEvent]]:
        stream_id = parse("sa", account_id)
        history = [] if stream_id is None else await context.load(stream_id, ServiceAccountEvent)
        return self._live(history, caller, account_id), history

    @staticmethod
    def _live(history: list[ServiceAccountEvent], caller: Caller, account_id: str) -> ServiceAccount:
        account = accounts.project_service_account(None, cast(list[AnyServiceAccountEvent], history))
        if account is None or account.deleted or account.workspace_id != caller.workspace_id:
            raise NotFound("service account", account_id)
        return account
