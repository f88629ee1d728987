"""Request and response bodies of connectors and sync runs (api.md "Connectors, sync runs, ingestion jobs")."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

from api.core.input_policy import RequestBody
from domain.connectors.catalog import ENTRIES

ConnectorType = StrEnum("ConnectorType", {entry.type.upper(): entry.type for entry in ENTRIES})  # type: ignore[misc]
"""The catalogue's types (GET /v1/connector-catalog)."""
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Schedule = Annotated[str, msgspec.Meta(min_length=9, max_length=120,
                                       description="five-field cron (UTC), default */30 * * * *")]
SettingValue = Annotated[str, msgspec.Meta(max_length=2048)] | Annotated[
    list[Annotated[str, msgspec.Meta(max_length=200)]], msgspec.Meta(max_length=50)]
Config = Annotated[dict[Annotated[str, msgspec.Meta(max_length=64)], SettingValue], msgspec.Meta(max_length=20)]
Credentials = Annotated[dict[Annotated[str, msgspec.Meta(max_length=64)],
                             Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]],
                        msgspec.Meta(max_length=10, description="write-only: never returned, see has_credentials")]


class CreateConnectorRequest(RequestBody, kw_only=True):
    type: ConnectorType
    display_name: DisplayName | None = None
    config: Config = msgspec.field(default_factory=dict)
    credentials: Credentials | None = None
    schedule: Schedule | None = None


class UpdateConnectorRequest(RequestBody, kw_only=True):
    display_name: DisplayName | msgspec.UnsetType = msgspec.UNSET
    config: Config | msgspec.UnsetType = msgspec.UNSET
    credentials: Credentials | msgspec.UnsetType = msgspec.UNSET
    schedule: Schedule | msgspec.UnsetType = msgspec.UNSET


class BackfillRequest(RequestBody, kw_only=True):
    days: Annotated[int, msgspec.Meta(ge=1, le=365)] = 90


class ConnectionTest(msgspec.Struct, kw_only=True):
    """The outcome of one real call to the provider with the stored credentials."""

    ok: bool
    outcome: str
    """`ok`, `unauthorized` (the provider refused the credentials), `unreachable` or `provider_error`."""
    message: str
    latency_ms: int


class SigningSecret(msgspec.Struct, kw_only=True):
    connector_id: str
    signing_secret: str
    """`whsec_…`: shown once."""
    inbound_url: str
