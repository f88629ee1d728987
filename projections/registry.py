"""Every read model: its name, version (part of the durable consumer name), categories, tables and writer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from projections.issues import projector as issues

ProjectFn = Callable[[AsyncConnection[dict[str, Any]], Sequence[tuple[int, AnyEvent]]], Awaitable[None]]


@dataclass(frozen=True)
class Projection:
    name: str
    version: int
    categories: frozenset[str]
    tables: tuple[str, ...]
    schema_package: str
    project: ProjectFn

    @property
    def durable(self) -> str:
        return f"proj-{self.name}-v{self.version}"


PROJECTIONS: dict[str, Projection] = {
    issues.NAME: Projection(name=issues.NAME, version=issues.VERSION, categories=issues.CATEGORIES,
                            tables=issues.TABLES, schema_package="projections.issues", project=issues.project),
}
