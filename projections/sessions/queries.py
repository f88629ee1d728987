"""Reads of the `sessions` read model: where a refresh token's family lives, and whether a session is active."""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg import AsyncConnection

Conn = AsyncConnection[Any]


class SessionRef(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: str
    session_id: str
    user_id: str


async def session_by_refresh_hash(conn: Conn, token_hash: str) -> SessionRef | None:
    """Any workspace (a SECURITY DEFINER function): the refresh request does not say which one."""
    cursor = await conn.execute("SELECT workspace_id, session_id, user_id FROM session_by_refresh_hash(%s)",
                                (token_hash,))
    row = await cursor.fetchone()
    if row is None:
        return None
    values = row.values() if isinstance(row, dict) else row
    workspace_id, session_id, user_id = values
    return SessionRef(workspace_id=workspace_id, session_id=session_id, user_id=user_id)
