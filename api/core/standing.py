"""What the read models say about a token's caller right now, read once per request by api.core.principals."""

from __future__ import annotations

import msgspec


class Standing(msgspec.Struct, frozen=True, kw_only=True):
    workspace_status: str | None
    """None: the identity projection does not know the workspace (yet)."""
    member_role: str | None
    member_status: str | None
    """None: not a member (never was, or the projection has not got there)."""
    session_status: str | None
    """The token's sign-in session (refresh-token family); None for tokens without one."""
    mfa_required: bool
