"""Settings: the one place that reads the process environment."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network

import msgspec

DEFAULT_JWT_SECRET = "dev-secret-change-me-dev-secret-change-me"


class SettingsError(ValueError):
    """The environment holds a value the service cannot start with."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    environment: str = "development"
    port: int = 4000
    database_url: str = ""
    database_schema: str = "causeloop"
    nats_url: str = ""
    nats_stream: str = "CAUSELOOP_EVENTS"
    nats_stream_replicas: int = 1
    subject_prefix: str = "causeloop"
    jwt_secret: str = DEFAULT_JWT_SECRET
    cursor_secret: str = ""
    data_dir: str = ".causeloop"
    rate_limit_per_minute: int = 600
    trusted_proxies: str = ""
    """Comma-separated IPs/CIDRs of the reverse proxies whose X-Forwarded-For is believed (api/core/client_ip.py)."""
    max_body_bytes: int = 1_048_576
    read_your_writes_timeout_s: float = 5.0
    standing_cache_max_age_s: float = 5.0
    """Longest an API process serves a caller's standing from its cache without reading it again (the projectors'
    announcements make it forget sooner: this is the backstop for a lost LISTEN connection)."""
    projector_max_deliveries: int = 5
    group_commit_max_batch: int = 500
    db_pool_size: int = 10
    search_rank_window: int = 250
    """A ranked search (`GET /v1/issues?q=`, by relevance) ranks this many most recent matches (docs/api.md)."""
    log_level: str = "INFO"
    clerk_jwks_url: str = ""
    clerk_audience: str = ""
    clerk_authorized_parties: str = ""
    clerk_jwks_cooldown_s: float = 30.0
    causeloop_master_key: str = ""
    webhooks_allow_private_targets: bool = False
    """Development only (refused in production): outbound webhooks may target loopback/private addresses over http."""
    webhooks_timeout_s: float = 10.0
    webhooks_retry_base_s: float = 5.0
    webhooks_retry_window_s: float = 86_400.0
    webhooks_disable_after_s: float = 86_400.0
    webhooks_secret_overlap_s: float = 86_400.0
    webhooks_concurrency: int = 64
    webhooks_per_endpoint_concurrency: int = 48
    webhooks_poll_interval_s: float = 0.2
    connector_http_timeout_s: float = 15.0
    """Deadline of each call to a provider (headers and body together)."""
    connector_http_attempts: int = 4
    connector_http_max_wait_s: float = 60.0
    """Longest `Retry-After` or rate-limit reset a sync waits out; a longer one fails the run (retried later)."""
    connector_allow_private_urls: str = ""
    """`true`: in production too, provider URLs may resolve to private addresses (self-hosted Jira on the LAN).
    Outside production they always may (local test servers)."""
    sync_poll_interval_s: float = 1.0
    sync_scheduler_interval_s: float = 15.0
    sync_retry_base_s: float = 60.0
    """After a failed run the scheduler retries in base × 2^(failures−1), at most SYNC_RETRY_MAX_S."""
    sync_retry_max_s: float = 3600.0
    sync_concurrency: int = 4
    """Runs one sync worker process executes at once (each on a different connector)."""
    public_url: str = "http://localhost:4000"
    """This API's public base URL: OAuth providers redirect to `<public_url>/v1/connectors/oauth/callback`."""
    connector_oauth_clients: str = ""
    """JSON: {"linear": {"client_id": …, "client_secret": …, "authorize_url"?, "token_url"?, "scope"?}, …}."""
    app_url: str = "http://localhost:3000"
    """The web app's base URL; invitation `accept_url`s point at `<app_url>/invitations/accept?token=…`."""
    smtp_url: str = ""
    """Where notification e-mail goes: `smtp://[user:password@]host[:port]` (plain, port 25),
    `smtp+starttls://…` (port 587) or `smtps://…` (TLS, port 465). Unset: e-mail deliveries are recorded as skipped."""
    smtp_from: str = "Causeloop <notifications@causeloop.invalid>"
    channels_timeout_s: float = 10.0
    """Deadline of each send to Slack, Teams, PagerDuty or the SMTP server."""
    channels_retry_base_s: float = 30.0
    """A failed channel delivery is retried after base × 2^(attempt−1), at most 4 h apart, until CHANNELS_RETRY_WINDOW_S
    after its first attempt."""
    channels_retry_window_s: float = 86_400.0
    channels_poll_interval_s: float = 1.0
    notify_slack_base_url: str = ""
    """Development and tests only (refused in production): Slack webhook URLs are sent to this base instead of
    https://hooks.slack.com (same path), e.g. a local HTTP server."""
    notify_teams_base_url: str = ""
    """Development and tests only: Teams webhook URLs are sent to this base instead of their own host (same path)."""
    notify_pagerduty_base_url: str = ""
    """Development and tests only: PagerDuty events go to `<base>/v2/enqueue` instead of
    https://events.pagerduty.com/v2/enqueue."""

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def private_provider_urls(self) -> bool:
        return not self.is_production or self.connector_allow_private_urls.lower() in ("1", "true", "yes")

    @property
    def signing_key_for_cursors(self) -> str:
        return self.cursor_secret or self.jwt_secret

    @property
    def authorized_parties(self) -> frozenset[str]:
        """CLERK_AUTHORIZED_PARTIES as a set; empty means the `azp` claim is not checked."""
        return frozenset(part.strip() for part in self.clerk_authorized_parties.split(",") if part.strip())

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """TRUSTED_PROXIES parsed (a bare address is a one-address network); ValueError on a malformed entry."""
        return tuple(ip_network(part.strip(), strict=False) for part in self.trusted_proxies.split(",")
                     if part.strip())


_INT_FIELDS = {
    "port", "nats_stream_replicas", "rate_limit_per_minute", "max_body_bytes", "projector_max_deliveries",
    "group_commit_max_batch", "db_pool_size", "webhooks_concurrency", "webhooks_per_endpoint_concurrency",
    "connector_http_attempts", "sync_concurrency", "search_rank_window",
}
_BOOL_FIELDS = {"webhooks_allow_private_targets"}
_FLOAT_FIELDS = {"read_your_writes_timeout_s", "clerk_jwks_cooldown_s", "standing_cache_max_age_s",
                 "webhooks_timeout_s", "webhooks_retry_base_s", "webhooks_retry_window_s", "webhooks_disable_after_s",
                 "webhooks_secret_overlap_s", "webhooks_poll_interval_s",
                 "connector_http_timeout_s", "connector_http_max_wait_s", "sync_poll_interval_s",
                 "sync_scheduler_interval_s", "sync_retry_base_s", "sync_retry_max_s", "channels_timeout_s",
                 "channels_retry_base_s", "channels_retry_window_s", "channels_poll_interval_s"}


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from upper-case env vars named after the fields (PORT, DATABASE_URL, ...)."""
    raw: dict[str, object] = {}
    for field in Settings.__struct_fields__:
        value = environ.get(field.upper())
        if value is None or value == "":
            continue
        if field in _BOOL_FIELDS:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise SettingsError(f"{field.upper()} must be true or false, got {value!r}")
            raw[field] = value.lower() in ("true", "1", "yes")
            continue
        try:
            raw[field] = int(value) if field in _INT_FIELDS else float(value) if field in _FLOAT_FIELDS else value
        except ValueError as exc:
            raise SettingsError(f"{field.upper()} must be a number, got {value!r}") from exc
    settings = msgspec.convert(raw, Settings)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if len(settings.jwt_secret.encode()) < 32:
        raise SettingsError("JWT_SECRET must be at least 32 bytes")
    if settings.is_production and settings.jwt_secret == DEFAULT_JWT_SECRET:
        raise SettingsError("JWT_SECRET must be changed from the default in production")
    if not settings.database_schema.replace("_", "").isalnum():
        raise SettingsError("DATABASE_SCHEMA must be letters, digits and underscores")
    if settings.search_rank_window < 1:
        raise SettingsError("SEARCH_RANK_WINDOW must be at least 1")
    if settings.webhooks_per_endpoint_concurrency < 1:
        raise SettingsError("WEBHOOKS_PER_ENDPOINT_CONCURRENCY must be at least 1")
    try:
        _ = settings.trusted_proxy_networks
    except ValueError as exc:
        raise SettingsError(f"TRUSTED_PROXIES must be comma-separated IP addresses or CIDRs: {exc}") from None
    if settings.is_production and settings.webhooks_allow_private_targets:
        raise SettingsError("WEBHOOKS_ALLOW_PRIVATE_TARGETS is for development only; it is refused in production")
    overrides = [name.upper() for name in ("notify_slack_base_url", "notify_teams_base_url",
                                           "notify_pagerduty_base_url") if getattr(settings, name)]
    if settings.is_production and overrides:
        raise SettingsError(f"{', '.join(overrides)} are for development and tests only; refused in production")
    if settings.smtp_url and settings.smtp_url.split("://", 1)[0] not in ("smtp", "smtps", "smtp+starttls"):
        raise SettingsError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
    if settings.causeloop_master_key and not _is_key(settings.causeloop_master_key):
        raise SettingsError("CAUSELOOP_MASTER_KEY must be 32 bytes, base64-encoded")


def _is_key(text: str) -> bool:
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except ValueError:
        return False
