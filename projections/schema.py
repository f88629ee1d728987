"""The database schema of every read model, in the order of the registry, and the migration that applies it."""

from __future__ import annotations

from importlib import resources

from adapters import postgres
from adapters.settings import Settings
from projections.registry import PROJECTIONS, Projection


def schema_sql(projection: Projection) -> str:
    """The read model's schema.sql: idempotent, so it also serves a rebuild's shadow tables."""
    return resources.files(projection.schema_package).joinpath("schema.sql").read_text()


def schema_files() -> list[tuple[str, str]]:
    """(name, sql) of each read model's schema.sql, then standing.sql (which reads four of them)."""
    files = [(f"{p.schema_package.replace('.', '/')}/schema.sql", schema_sql(p)) for p in PROJECTIONS.values()]
    files.append(("projections/standing.sql", resources.files("projections").joinpath("standing.sql").read_text()))
    files.append(("projections/webhooks/delivery.sql",  # the delivery worker's tables (not a read model)
                  resources.files("projections.webhooks").joinpath("delivery.sql").read_text()))
    return files


def migrate(settings: Settings) -> None:
    """The event store, the shared tables and every read model's schema (adapters.postgres.migrate)."""
    postgres.migrate(settings, schema_files())
