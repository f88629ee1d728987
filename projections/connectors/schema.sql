-- The `connectors` read model: connectors (never their credentials: only whether they have some) and sync runs.
-- Applied with search_path set.

CREATE TABLE IF NOT EXISTS connectors (
    workspace_id          text NOT NULL,
    id                    text NOT NULL,
    version               int NOT NULL,
    type                  text NOT NULL,
    display_name          text NOT NULL,
    config                jsonb NOT NULL,
    schedule              text NOT NULL,
    status                text NOT NULL,
    has_credentials       boolean NOT NULL,
    has_signing_secret    boolean NOT NULL DEFAULT false,
    last_sync_at          timestamptz,
    last_error            text,
    last_run_id           text,
    last_failure_at       timestamptz,
    consecutive_failures  int NOT NULL,
    deleted               boolean NOT NULL,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX IF NOT EXISTS connectors_by_created ON connectors (workspace_id, created_at, id) WHERE NOT deleted;
CREATE INDEX IF NOT EXISTS connectors_schedulable ON connectors (status) WHERE NOT deleted;

CREATE TABLE IF NOT EXISTS sync_runs (
    workspace_id      text NOT NULL,
    id                text NOT NULL,
    version           int NOT NULL,
    connector_id      text NOT NULL,
    kind              text NOT NULL,
    status            text NOT NULL,
    backfill_days     int,
    queued_at         timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    records_seen      int NOT NULL,
    issues_created    int NOT NULL,
    issues_updated    int NOT NULL,
    issues_unchanged  int NOT NULL,
    issues_failed     int NOT NULL,
    error             text,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX IF NOT EXISTS sync_runs_by_connector ON sync_runs (workspace_id, connector_id, queued_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS sync_runs_pending ON sync_runs (queued_at, id) WHERE status IN ('queued', 'running');

CALL isolate_by_workspace('connectors', 'sync_runs');
