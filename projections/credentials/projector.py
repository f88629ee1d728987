"""Writes the `credentials` read model: tokens and service accounts, folded per batch and upserted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from domain.credentials.events import ApiTokenEvent, ServiceAccountEvent
from domain.ids import render
from projections.credentials.view import ServiceAccountRow, TokenRow, apply_service_account, apply_token
from projections.keyed_rows import rows_by_key

NAME = "credentials"
VERSION = 1
CATEGORIES = frozenset({"api_token", "service_account"})
TABLES = ("api_tokens", "service_accounts")

Conn = AsyncConnection[dict[str, Any]]
R = TypeVar("R", TokenRow, ServiceAccountRow)
ACCOUNT_COLUMNS = ", ".join(ServiceAccountRow.__struct_fields__)


def _upsert(table: str, fields: tuple[str, ...]) -> str:
    names = ", ".join(fields)
    values = ", ".join(f"%({name})s" for name in fields)
    updates = ", ".join(f"{name} = excluded.{name}" for name in fields[2:])
    return (f"INSERT INTO {table} ({names}) VALUES ({values}) ON CONFLICT (workspace_id, id) DO UPDATE SET "
            f"{updates} WHERE {table}.version < excluded.version")


_UPSERT_TOKEN = _upsert("api_tokens", TokenRow.__struct_fields__)
_UPSERT_ACCOUNT = _upsert("service_accounts", ServiceAccountRow.__struct_fields__)


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Apply `batch` (in position order, past the checkpoint) inside the caller's transaction."""
    token_keys = {(str(e.workspace_id), render("tok", e.originator_id)) for _, e in batch
                  if isinstance(e, ApiTokenEvent)}
    account_keys = {(str(e.workspace_id), render("sa", e.originator_id)) for _, e in batch
                    if isinstance(e, ServiceAccountEvent)}
    tokens = await _load(conn, "api_tokens", token_keys, TokenRow)
    accounts = await _load(conn, "service_accounts", account_keys, ServiceAccountRow)
    changed_tokens: dict[tuple[str, str], TokenRow] = {}
    changed_accounts: dict[tuple[str, str], ServiceAccountRow] = {}
    for _, event in batch:
        if isinstance(event, ApiTokenEvent):
            key = (str(event.workspace_id), render("tok", event.originator_id))
            token = apply_token(tokens.get(key), event)
            if token is not None and token is not tokens.get(key):
                tokens[key] = changed_tokens[key] = token
        elif isinstance(event, ServiceAccountEvent):
            key = (str(event.workspace_id), render("sa", event.originator_id))
            account = apply_service_account(accounts.get(key), event)
            if account is not None and account is not accounts.get(key):
                accounts[key] = changed_accounts[key] = account
    async with conn.pipeline():
        for token in changed_tokens.values():
            await conn.execute(_UPSERT_TOKEN, msgspec.structs.asdict(token))
        for account in changed_accounts.values():
            await conn.execute(_UPSERT_ACCOUNT, msgspec.structs.asdict(account))


async def _load(conn: Conn, table: str, keys: set[tuple[str, str]], row_type: type[R]) -> dict[tuple[str, str], R]:
    if not keys:
        return {}
    rows = await rows_by_key(conn, table, row_type.__struct_fields__, keys)
    return {(str(row["workspace_id"]), str(row["id"])): msgspec.convert(row, row_type, strict=False) for row in rows}
