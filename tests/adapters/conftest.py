"""Fixtures of the adapter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_providers import Provider, serving


@pytest.fixture
def server() -> Iterator[tuple[str, Provider]]:
    """The local server that behaves like Jira, GitHub, PagerDuty and Sentry (tests/fake_providers.py)."""
    with serving() as running:
        yield running
