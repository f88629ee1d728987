-- The `ingestion` read model: one row per ingestion job (GET /v1/ingest/status/{job_id}).
-- Applied with search_path set.

CREATE TABLE IF NOT EXISTS ingestion_jobs (
    workspace_id  text NOT NULL,
    id            text NOT NULL,
    version       int NOT NULL,
    status        text NOT NULL,
    kind          text NOT NULL,
    source        text,
    received      int NOT NULL,
    accepted      int NOT NULL,
    rejected      jsonb NOT NULL,
    issue_ids     jsonb NOT NULL,
    created       int NOT NULL,
    updated       int NOT NULL,
    unchanged     int NOT NULL,
    created_at    timestamptz NOT NULL,
    completed_at  timestamptz,
    PRIMARY KEY (workspace_id, id)
);

-- Version 2: the connector whose inbound delivery or sync page the job was.
ALTER TABLE ingestion_jobs ADD COLUMN IF NOT EXISTS connector_id text;

CALL isolate_by_workspace('ingestion_jobs');
