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

-- For inbound webhooks (docs-facts 10.5: a connector's inbound deliveries are verified with the secret of an
-- outbound webhook that references the connector). The inbound route is public, so no tenant context exists:
-- this function runs as causeloop_writer and answers only for the exact connector id asked about, with the sealed
-- secrets (decrypted by the caller with the master key, the webhook's id as owner).
CREATE OR REPLACE FUNCTION connector_signing_secrets(connector text)
RETURNS TABLE (workspace_id text, webhook_id text, secret_ciphertext text, previous_secret_ciphertext text,
               previous_valid_until timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT r.workspace_id, r.id, r.secret_ciphertext, r.previous_secret_ciphertext, r.previous_valid_until
    FROM webhook_routes r
    WHERE r.connector_id = connector AND NOT r.deleted
    ORDER BY r.id
$$;
ALTER FUNCTION connector_signing_secrets(text) OWNER TO causeloop_writer;
REVOKE ALL ON FUNCTION connector_signing_secrets(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connector_signing_secrets(text) TO causeloop_reader;
