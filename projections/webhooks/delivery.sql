-- The delivery worker's own tables (operational state, not a rebuildable read model: a rebuild would send again).
-- webhook_routes: the endpoints as the worker folds them from the event stream, in stream order, with the sealed
-- secrets and the endpoint's health. webhook_deliveries: one row per (endpoint, webhook event), decided in the
-- same transaction as the worker's checkpoint. webhook_attempts: every HTTP attempt.

CREATE TABLE IF NOT EXISTS webhook_routes (
    workspace_id                text NOT NULL,
    id                          text NOT NULL,
    url                         text NOT NULL,
    event_types                 text[] NOT NULL,
    connector_id                text,
    status                      text NOT NULL,
    deleted                     boolean NOT NULL,
    secret_ciphertext           text NOT NULL,
    previous_secret_ciphertext  text,
    previous_valid_until        timestamptz,
    version                     int NOT NULL,
    failing_since               timestamptz,
    last_success_at             timestamptz,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS webhook_routes_by_id ON webhook_routes (id);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    workspace_id      text NOT NULL,
    id                text PRIMARY KEY,
    endpoint_id       text NOT NULL,
    event_id          text NOT NULL,
    event_type        text NOT NULL,
    kind              text NOT NULL,
    payload           bytea NOT NULL,
    position          bigint NOT NULL,
    created_at        timestamptz NOT NULL,
    status            text NOT NULL,
    attempts          int NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL,
    first_attempt_at  timestamptz,
    last_attempt_at   timestamptz,
    last_status_code  int,
    last_error        text,
    delivered_at      timestamptz,
    redeliveries      int NOT NULL DEFAULT 0,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_endpoint
    ON webhook_deliveries (workspace_id, endpoint_id, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS webhook_attempts (
    workspace_id   text NOT NULL,
    delivery_id    text NOT NULL,
    attempt        int NOT NULL,
    started_at     timestamptz NOT NULL,
    latency_ms     double precision NOT NULL,
    status_code    int,
    error          text,
    response_body  text,
    succeeded      boolean NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

CALL isolate_by_workspace('webhook_routes', 'webhook_deliveries', 'webhook_attempts');
