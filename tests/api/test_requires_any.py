"""The any-of scope guard refuses to be built wrong, so a typo in a route's scopes fails at import, not at runtime."""

from __future__ import annotations

import pytest

from api.core.auth import requires_any


def test_an_unknown_scope_is_refused_when_the_route_is_declared() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        requires_any("issues:read", "issues:reed")


def test_one_scope_is_not_an_any_of() -> None:
    with pytest.raises(ValueError, match="two or more"):
        requires_any("issues:read")


def test_the_guard_reports_its_scopes_sorted_and_joined_by_a_bar() -> None:
    guard = requires_any("workspace:admin", "workspace.compliance:write")

    assert guard.scope == "workspace.compliance:write|workspace:admin"
    assert repr(guard) == "requires_any('workspace.compliance:write', 'workspace:admin')"
