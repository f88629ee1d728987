"""Every read model: its name, version (part of its consumer's durable name), categories, tables and writer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from projections.audit import projector as audit
from projections.connectors import projector as connectors
from projections.credentials import projector as credentials
from projections.identity import projector as identity
from projections.ingestion import projector as ingestion
from projections.issues import projector as issues
from projections.notifications import projector as notifications
from projections.patterns import projector as patterns
from projections.predictions import projector as predictions
from projections.recommendations import projector as recommendations
from projections.sessions import projector as sessions
from projections.webhooks import dispatch
from projections.webhooks import projector as webhooks
from projections.workspace_settings import projector as workspace_settings

Conn = AsyncConnection[dict[str, Any]]
Batch = Sequence[tuple[int, AnyEvent]]
ProjectFn = Callable[[Conn, Batch], Awaitable[None]]


@dataclass(frozen=True)
class Stages:
    """`project` split in three, so a rebuild can prepare one page while Postgres writes the previous one."""

    keys_of: Callable[[Batch], set[Any]]
    load: Callable[[Conn, set[Any]], Awaitable[dict[Any, Any]]]
    prepare: Callable[[dict[Any, Any], Batch], Any]
    write: Callable[[Conn, Any], Awaitable[None]]


@dataclass(frozen=True)
class Projection:
    name: str
    version: int
    categories: frozenset[str]
    tables: tuple[str, ...]
    schema_package: str
    project: ProjectFn
    stages: Stages | None = None
    guards_standing: bool = False
    """Its rows decide a caller's standing (api/core/principals.py): each batch announces the workspaces it changed."""

PROJECTIONS: dict[str, Projection] = {
    issues.NAME: Projection(name=issues.NAME, version=issues.VERSION, categories=issues.CATEGORIES,
                            tables=issues.TABLES, schema_package="projections.issues", project=issues.project,
                            stages=Stages(keys_of=issues.keys_of, load=issues.load, prepare=issues.prepare,
                                          write=issues.write)),
    identity.NAME: Projection(name=identity.NAME, version=identity.VERSION, categories=identity.CATEGORIES,
                              tables=identity.TABLES, schema_package="projections.identity", project=identity.project,
                              guards_standing=True),
    workspace_settings.NAME: Projection(
        name=workspace_settings.NAME, version=workspace_settings.VERSION, categories=workspace_settings.CATEGORIES,
        tables=workspace_settings.TABLES, schema_package="projections.workspace_settings",
        project=workspace_settings.project, guards_standing=True),
    audit.NAME: Projection(name=audit.NAME, version=audit.VERSION, categories=audit.CATEGORIES,
                           tables=audit.TABLES, schema_package="projections.audit", project=audit.project,
                           stages=Stages(keys_of=audit.keys_of, load=audit.load, prepare=audit.prepare,
                                         write=audit.write)),
    sessions.NAME: Projection(name=sessions.NAME, version=sessions.VERSION, categories=sessions.CATEGORIES,
                              tables=sessions.TABLES, schema_package="projections.sessions",
                              project=sessions.project, guards_standing=True),
    credentials.NAME: Projection(name=credentials.NAME, version=credentials.VERSION,
                                 categories=credentials.CATEGORIES, tables=credentials.TABLES,
                                 schema_package="projections.credentials", project=credentials.project,
                                 guards_standing=True),
    connectors.NAME: Projection(name=connectors.NAME, version=connectors.VERSION, categories=connectors.CATEGORIES,
                                tables=connectors.TABLES, schema_package="projections.connectors",
                                project=connectors.project),
    patterns.NAME: Projection(name=patterns.NAME, version=patterns.VERSION, categories=patterns.CATEGORIES,
                              tables=patterns.TABLES, schema_package="projections.patterns",
                              project=patterns.project),
    recommendations.NAME: Projection(
        name=recommendations.NAME, version=recommendations.VERSION, categories=recommendations.CATEGORIES,
        tables=recommendations.TABLES, schema_package="projections.recommendations", project=recommendations.project),
    predictions.NAME: Projection(name=predictions.NAME, version=predictions.VERSION,
                                 categories=predictions.CATEGORIES, tables=predictions.TABLES,
                                 schema_package="projections.predictions", project=predictions.project),
    notifications.NAME: Projection(name=notifications.NAME, version=notifications.VERSION,
                                   categories=notifications.CATEGORIES, tables=notifications.TABLES,
                                   schema_package="projections.notifications", project=notifications.project),
    ingestion.NAME: Projection(name=ingestion.NAME, version=ingestion.VERSION, categories=ingestion.CATEGORIES,
                               tables=ingestion.TABLES, schema_package="projections.ingestion",
                               project=ingestion.project),
}
PROJECTIONS[webhooks.NAME] = Projection(name=webhooks.NAME, version=webhooks.VERSION, categories=webhooks.CATEGORIES,
                                        tables=webhooks.TABLES, schema_package="projections.webhooks",
                                        project=webhooks.project)

DISPATCH = Projection(name=dispatch.NAME, version=dispatch.VERSION, categories=dispatch.CATEGORIES,
                      tables=dispatch.TABLES, schema_package="projections.webhooks", project=dispatch.project)
"""The webhook delivery decisions: a fold hosted like a read model (by the delivery worker), never rebuilt (its rows
are decisions with side effects: a rebuild would send every delivery again)."""
RETRIABLE: dict[str, Projection] = {**PROJECTIONS, DISPATCH.name: DISPATCH}
"""Every hosted fold whose parked messages `causeloop projections retry NAME` re-applies."""
