-- The `patterns` read model: one row per pattern, its members with how each matched, and the similar-issue
-- suggestions the detector computed. Applied with search_path set.

CREATE TABLE IF NOT EXISTS patterns (
    workspace_id   text NOT NULL,
    id             text NOT NULL,
    version        int NOT NULL,
    name           text NOT NULL,
    status         text NOT NULL,
    fingerprint    jsonb NOT NULL,
    template       text NOT NULL,
    tags           text[] NOT NULL DEFAULT '{}',
    issue_count    int NOT NULL DEFAULT 0,
    confidence     double precision NOT NULL DEFAULT 0,
    first_seen_at  timestamptz,
    last_seen_at   timestamptz,
    mttr_seconds   bigint,
    sev_critical   int NOT NULL DEFAULT 0,
    sev_high       int NOT NULL DEFAULT 0,
    sev_medium     int NOT NULL DEFAULT 0,
    sev_low        int NOT NULL DEFAULT 0,
    services       text[] NOT NULL DEFAULT '{}',
    merged_into    text,
    initial_risk   int,               -- given by the user who created it: shown while it has no member
    initial_confidence double precision,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    search         tsvector GENERATED ALWAYS AS (to_tsvector('english', name || ' ' || template)) STORED,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX IF NOT EXISTS patterns_by_last_seen ON patterns (workspace_id, last_seen_at, id);
CREATE INDEX IF NOT EXISTS patterns_search ON patterns USING gin (search);

CREATE TABLE IF NOT EXISTS pattern_members (
    workspace_id          text NOT NULL,
    pattern_id            text NOT NULL,
    issue_id              text NOT NULL,
    method                text NOT NULL,
    similarity            double precision NOT NULL,
    fingerprint           text NOT NULL,
    severity              text NOT NULL,
    service               text,
    opened_at             timestamptz NOT NULL,
    linked_at             timestamptz NOT NULL,
    resolved_at           timestamptz,
    suggested_pattern_id  text,
    suggested_similarity  double precision,
    PRIMARY KEY (workspace_id, pattern_id, issue_id)
);
CREATE INDEX IF NOT EXISTS pattern_members_by_issue ON pattern_members (workspace_id, issue_id);
CREATE INDEX IF NOT EXISTS pattern_members_by_opened ON pattern_members (workspace_id, pattern_id, opened_at);

CREATE TABLE IF NOT EXISTS issue_similar (
    workspace_id  text NOT NULL,
    issue_id      text NOT NULL,
    other_id      text NOT NULL,
    similarity    double precision NOT NULL,  -- TF-IDF cosine, 0–1
    earlier       boolean NOT NULL,  -- the other issue was opened before this one
    PRIMARY KEY (workspace_id, issue_id, other_id)
);

CALL isolate_by_workspace('patterns', 'pattern_members', 'issue_similar');
