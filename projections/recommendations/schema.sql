-- The `recommendations` read model: one row per recommendation, its steps (with completion) and its verification.
-- Applied with search_path set.

CREATE TABLE IF NOT EXISTS recommendations (
    workspace_id              text NOT NULL,
    id                        text NOT NULL,
    version                   int NOT NULL,
    pattern_id                text NOT NULL,
    playbook                  text NOT NULL,
    rank                      int NOT NULL,
    title                     text NOT NULL,
    type                      text NOT NULL,
    impact                    text NOT NULL,
    effort                    text NOT NULL,
    overview                  text NOT NULL,
    status                    text NOT NULL,
    expected_loops_prevented  double precision NOT NULL,
    steps                     jsonb NOT NULL,
    dismissed_reason          text,
    verification_state        text NOT NULL DEFAULT 'none',
    proof_window_days         int,
    watching_since            timestamptz,
    verified_at               timestamptz,
    reopened_at               timestamptz,
    reopened_by_issue_id      text,
    verification_explanation  text,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX IF NOT EXISTS recommendations_by_rank ON recommendations (workspace_id, rank, id);
CREATE INDEX IF NOT EXISTS recommendations_by_pattern ON recommendations (workspace_id, pattern_id);

-- Tickets pushed to issue trackers, oldest first: [{tracker, project, connector_id, key, url, pushed_at}].
ALTER TABLE recommendations ADD COLUMN IF NOT EXISTS tickets jsonb NOT NULL DEFAULT '[]';

CALL isolate_by_workspace('recommendations');
