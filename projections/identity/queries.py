"""Reads of the `identity` read model, shared by authentication, sign-in and the member routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import class_row

Conn = AsyncConnection[Any]


class UserRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    email: str
    name: str
    avatar_url: str | None
    timezone: str
    locale: str
    clerk_user_id: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class MembershipRow(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: str
    id: str
    user_id: str
    role: str
    status: str
    joined_at: datetime


_USER = ("SELECT id, email, name, avatar_url, timezone, locale, clerk_user_id, created_at, updated_at, version"
         " FROM users")
_MEMBERSHIP = "SELECT workspace_id, id, user_id, role, status, joined_at FROM memberships"


async def _one_user(conn: Conn, where: str, value: str) -> UserRow | None:
    async with conn.cursor(row_factory=class_row(UserRow)) as cur:
        await cur.execute(f"{_USER} WHERE {where} = %s", (value,))
        return await cur.fetchone()


async def user_by_id(conn: Conn, user_id: str) -> UserRow | None:
    return await _one_user(conn, "id", user_id)


async def user_by_email(conn: Conn, email: str) -> UserRow | None:
    return await _one_user(conn, "email", email.strip().lower())


async def user_by_external_id(conn: Conn, clerk_user_id: str) -> UserRow | None:
    return await _one_user(conn, "clerk_user_id", clerk_user_id)


async def membership(conn: Conn, workspace_id: str, user_id: str) -> MembershipRow | None:
    """The user's membership of the workspace, in any status (under RLS: only inside that workspace)."""
    async with conn.cursor(row_factory=class_row(MembershipRow)) as cur:
        await cur.execute(f"{_MEMBERSHIP} WHERE workspace_id = %s AND user_id = %s",
                          (workspace_id, user_id))
        return await cur.fetchone()


async def workspaces_of_user(conn: Conn, user_id: str) -> list[MembershipRow]:
    """The user's ACTIVE memberships in every workspace, oldest first (sign-in picks the first)."""
    async with conn.cursor(row_factory=class_row(MembershipRow)) as cur:
        await cur.execute(
            "SELECT workspace_id, id, %s AS user_id, role, status, joined_at FROM user_memberships(%s)"
            " WHERE status = 'active'", (user_id, user_id))
        return await cur.fetchall()
