-- The `predictions` read model: every prediction with its resolution and feedback, and the alert rules.
-- Applied with search_path set.

CREATE TABLE IF NOT EXISTS predictions (
    workspace_id           text NOT NULL,
    id                     text NOT NULL,
    version                int NOT NULL,
    pattern_id             text NOT NULL,
    window_days            int NOT NULL,
    probability            double precision NOT NULL,
    generated_probability  double precision NOT NULL,
    predicted_at           timestamptz NOT NULL,
    expires_at             timestamptz NOT NULL,
    likely_trigger         text NOT NULL,
    impact                 text NOT NULL,
    status                 text NOT NULL,   -- active | dismissed | expired
    model_version          text NOT NULL,
    explanation            text NOT NULL,
    rate_per_day           double precision NOT NULL,
    sample_size            int NOT NULL,
    last_seen_at           timestamptz NOT NULL,
    resolved_at            timestamptz,
    recurred               boolean,
    recurred_at            timestamptz,
    feedback               text,
    feedback_comment       text,
    updated_at             timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX IF NOT EXISTS predictions_by_pattern ON predictions (workspace_id, pattern_id, window_days, predicted_at);
CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (workspace_id, predicted_at, id);

CREATE TABLE IF NOT EXISTS alert_rules (
    workspace_id   text NOT NULL,
    id             text NOT NULL,
    version        int NOT NULL,
    name           text NOT NULL,
    scope          text NOT NULL,
    probability    double precision NOT NULL,
    window_days    int NOT NULL,
    channels       text[] NOT NULL DEFAULT '{}',
    enabled        boolean NOT NULL,
    snoozed_until  timestamptz,
    deleted        boolean NOT NULL DEFAULT false,
    fired_count    int NOT NULL DEFAULT 0,
    last_fired_at  timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX IF NOT EXISTS alert_rules_by_created ON alert_rules (workspace_id, created_at, id);

CALL isolate_by_workspace('predictions', 'alert_rules');
