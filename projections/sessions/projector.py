"""Writes the `sessions` read model: refresh-token families (`auth_sessions`) and TOTP factors (`mfa_factors`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from domain.ids import render
from domain.mfa.events import MfaEvent, TotpActivated, TotpEnrolled, TotpRemoved
from domain.sessions.events import SessionEvent, SessionRefreshed, SessionRevoked, SessionStarted

NAME = "sessions"
VERSION = 1
CATEGORIES = frozenset({"session", "mfa"})
TABLES = ("auth_sessions", "mfa_factors")

Conn = AsyncConnection[dict[str, Any]]

# Every write is guarded by the row's version, so a repeated event changes nothing.
_START = ("INSERT INTO auth_sessions (workspace_id, id, user_id, status, refresh_hash, mfa, created_at, version)"
          " VALUES (%s, %s, %s, 'active', %s, %s, %s, %s) ON CONFLICT DO NOTHING")
_REFRESH = ("UPDATE auth_sessions SET refresh_hash = %s, previous_hashes = previous_hashes || %s::text,"
            " refreshed_at = %s, version = %s WHERE workspace_id = %s AND id = %s AND version < %s")
_REVOKE = ("UPDATE auth_sessions SET status = 'revoked', version = %s"
           " WHERE workspace_id = %s AND id = %s AND version < %s")
_ENROL = ("INSERT INTO mfa_factors (user_id, status, secret_ciphertext, created_at, version)"
          " VALUES (%s, 'pending', %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET status = 'pending',"
          " secret_ciphertext = excluded.secret_ciphertext, created_at = excluded.created_at,"
          " activated_at = NULL, version = excluded.version WHERE mfa_factors.version < excluded.version")
_ACTIVATE = ("UPDATE mfa_factors SET status = 'active', activated_at = %s, version = %s"
             " WHERE user_id = %s AND version < %s")
_REMOVE = "DELETE FROM mfa_factors WHERE user_id = %s AND version < %s"


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    """Apply `batch` (in position order, already past the checkpoint) inside the caller's transaction."""
    for _, event in batch:
        if isinstance(event, SessionEvent):
            await _session(conn, event)
        elif isinstance(event, MfaEvent):
            await _mfa(conn, event)


async def _session(conn: Conn, event: SessionEvent) -> None:
    ws, sid, version = event.workspace_id, render("ses", event.originator_id), event.originator_version
    match event:
        case SessionStarted():
            await conn.execute(_START, (ws, sid, event.user_id, event.refresh_hash, event.mfa, event.occurred_at,
                                        version))
        case SessionRefreshed():
            await conn.execute(_REFRESH, (event.refresh_hash, event.previous_hash, event.occurred_at, version, ws,
                                          sid, version))
        case SessionRevoked():
            await conn.execute(_REVOKE, (version, ws, sid, version))
        case _:
            raise TypeError(f"unexpected session event {type(event).__name__}")


async def _mfa(conn: Conn, event: MfaEvent) -> None:
    version = event.originator_version
    match event:
        case TotpEnrolled():
            await conn.execute(_ENROL, (event.user_id, event.secret_ciphertext, event.occurred_at, version))
        case TotpActivated():
            await conn.execute(_ACTIVATE, (event.occurred_at, version, event.user_id, version))
        case TotpRemoved():
            await conn.execute(_REMOVE, (event.user_id, version))
        case _:
            raise TypeError(f"unexpected mfa event {type(event).__name__}")
