-- The `webhooks` read model: outbound webhook endpoints as the API lists them. Applied with search_path set.
-- No secret and no ciphertext here: the delivery worker keeps those in its own tables (delivery.sql).

CREATE TABLE IF NOT EXISTS webhook_endpoints (
    workspace_id                 text NOT NULL,
    id                           text NOT NULL,
    url                          text NOT NULL,
    event_types                  text[] NOT NULL,
    connector_id                 text,
    description                  text NOT NULL,
    status                       text NOT NULL,
    disabled_reason              text,
    secret_rotated_at            timestamptz,
    previous_secret_valid_until  timestamptz,
    created_by                   text NOT NULL,
    created_at                   timestamptz NOT NULL,
    updated_at                   timestamptz NOT NULL,
    deleted                      boolean NOT NULL DEFAULT false,
    version                      int NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_by_created ON webhook_endpoints (workspace_id, created_at, id);

CALL isolate_by_workspace('webhook_endpoints');
