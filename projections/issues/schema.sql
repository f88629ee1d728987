-- The `issues` read model: list/detail rows, the activity feed and comments. Applied with search_path set.

CREATE TABLE IF NOT EXISTS issues (
    workspace_id       text NOT NULL,
    id                 text NOT NULL,
    version            int NOT NULL,
    title              text NOT NULL,
    body               text,
    status             text NOT NULL,
    stage              text NOT NULL,
    severity           text NOT NULL,
    severity_rank      smallint NOT NULL,
    source             text NOT NULL,
    external_id        text,
    team               text,
    assignee_id        text,
    external_url       text,
    metadata           jsonb NOT NULL DEFAULT '{}',
    pattern_id         text,
    risk_score         int NOT NULL DEFAULT 0,
    analysis           jsonb,
    source_created_at  timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    resolved_at        timestamptz,
    comment_count      int NOT NULL DEFAULT 0,
    doc                text,  -- the issue's JSON as the API serves it (projections.issues.view.document)
    search             tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', coalesce(body, '')), 'B')
    ) STORED,
    PRIMARY KEY (workspace_id, id)
);
-- Read models of VERSION 1 had no `doc`: until `causeloop projections rebuild issues` fills it, reads render
-- those rows in SQL instead (queries.DOCUMENT).
ALTER TABLE issues ADD COLUMN IF NOT EXISTS doc text;
CREATE INDEX IF NOT EXISTS issues_by_created ON issues (workspace_id, created_at, id);
CREATE INDEX IF NOT EXISTS issues_by_status_severity ON issues (workspace_id, status, severity, created_at, id);
CREATE INDEX IF NOT EXISTS issues_by_updated ON issues (workspace_id, updated_at, id);
CREATE INDEX IF NOT EXISTS issues_by_risk ON issues (workspace_id, risk_score, id);
CREATE INDEX IF NOT EXISTS issues_by_severity ON issues (workspace_id, severity_rank, id);
CREATE INDEX IF NOT EXISTS issues_by_pattern ON issues (workspace_id, pattern_id) WHERE pattern_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS issues_search ON issues USING gin (search);
-- New entries wait in GIN's pending list; whichever write overflows it merges the whole list, and a 4 MB list
-- (the default) stalls that projector batch for a long moment. A small list merges often and briefly.
ALTER INDEX issues_search SET (gin_pending_list_limit = 256);

CREATE TABLE IF NOT EXISTS issue_activity (
    workspace_id  text NOT NULL,
    issue_id      text NOT NULL,
    version       int NOT NULL,
    position      bigint NOT NULL,
    id            uuid NOT NULL,
    type          text NOT NULL,
    actor         jsonb NOT NULL,
    occurred_at   timestamptz NOT NULL,
    data          jsonb NOT NULL,
    PRIMARY KEY (workspace_id, issue_id, version)
);

CREATE TABLE IF NOT EXISTS issue_comments (
    workspace_id  text NOT NULL,
    id            text NOT NULL,
    issue_id      text NOT NULL,
    author        jsonb NOT NULL,
    body          text NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX IF NOT EXISTS issue_comments_by_issue ON issue_comments (workspace_id, issue_id, created_at, id);

-- Totals for the hot filters (status, severity, stage): `page.total` without counting rows.
CREATE TABLE IF NOT EXISTS issue_counts (
    workspace_id  text NOT NULL,
    status        text NOT NULL,
    severity      text NOT NULL,
    stage         text NOT NULL,
    n             bigint NOT NULL,
    PRIMARY KEY (workspace_id, status, severity, stage)
);

CALL isolate_by_workspace('issues', 'issue_activity', 'issue_comments', 'issue_counts');

-- Full-text matches for the current workspace. `@@` is not LEAKPROOF, so under the reader's RLS policy the
-- planner may not use the GIN index; this function runs as causeloop_writer (policy USING (true)), where
-- it can, and matches only inside the workspace set for the transaction: the same guard as the policy.
CREATE OR REPLACE FUNCTION issue_search(q text)
RETURNS TABLE (match_id text, match_rank float8)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT i.id, ts_rank(i.search, query)::float8
    FROM issues i, websearch_to_tsquery('english', q) AS query
    WHERE i.workspace_id = current_setting('causeloop.workspace_id', true) AND i.search @@ query
$$;
ALTER FUNCTION issue_search(text) OWNER TO causeloop_writer;
REVOKE ALL ON FUNCTION issue_search(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION issue_search(text) TO causeloop_reader;

-- A ranked search ranks a bounded window: the `cap` most recent matches (docs/api.md, "Search"), each row with
-- `total`, the matches of the whole workspace for `page.total` (decisions/015). Statements are EXECUTEd, so planned
-- with the actual words. When the planner expects few matches (under ten windows), one scan finds them (up to
-- `upto`): their number is the exact total and, when they are all, the window comes from them too (a second scan
-- was half the work of such a search). Otherwise the matches are counted up to `upto` when fewer than
-- `trusted_from` are expected, and the window is found by whichever index the planner prefers (a common word
-- walks the newest issues back until it has `cap` matches); above `upto` the total is the planner's estimate
-- (at least what was counted). Runs as the writer, where the planner sees
-- the column's statistics (under the reader's RLS it estimates 1 row).
DROP FUNCTION IF EXISTS issue_search_recent(text, int);
DROP FUNCTION IF EXISTS issue_match_total(text, int, int);
CREATE OR REPLACE FUNCTION issue_search_window(q text, cap int, upto int, trusted_from int)
RETURNS TABLE (match_id text, match_rank float8, total bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT AS $$  -- VOLATILE: EXPLAIN needs it
DECLARE
    plan json;
    estimated bigint;
    counted bigint := 0;
    counting bigint;
    found_row record;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM issues i WHERE i.workspace_id = '
            'current_setting(''causeloop.workspace_id'', true) AND i.search @@ websearch_to_tsquery(''english'', $1)'
        INTO plan USING q;
    estimated := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::bigint;
    IF estimated < least(trusted_from, 10 * cap) THEN
        -- few: one scan finds them all (up to `upto`), so it gives both the exact total and the window
        FOR found_row IN EXECUTE
            'WITH m AS MATERIALIZED ('
            '  SELECT i.id, i.created_at, i.search, query FROM issues i, websearch_to_tsquery(''english'', $1) AS query'
            '  WHERE i.workspace_id = current_setting(''causeloop.workspace_id'', true) AND i.search @@ query LIMIT $3),'
            ' n AS (SELECT count(*) AS c FROM m) '
            'SELECT w.id, ts_rank(w.search, w.query)::float8 AS r, n.c FROM n, '
            '  LATERAL (SELECT * FROM m ORDER BY m.created_at DESC, m.id DESC LIMIT $2) w WHERE n.c < $3 '
            'UNION ALL SELECT NULL, NULL, n.c FROM n WHERE n.c >= $3'  -- too many to be all: a marker row
            USING q, cap, upto
        LOOP
            IF found_row.id IS NULL THEN
                counted := found_row.c;
                EXIT;
            END IF;
            match_id := found_row.id;
            match_rank := found_row.r;
            total := found_row.c;
            RETURN NEXT;
        END LOOP;
        IF counted = 0 THEN
            RETURN;  -- every match was returned (or there is none)
        END IF;
        counting := greatest(counted, estimated);
    ELSIF estimated < trusted_from THEN
        SELECT count(*) INTO counted FROM (
            SELECT 1 FROM issues i, websearch_to_tsquery('english', q) AS query
            WHERE i.workspace_id = current_setting('causeloop.workspace_id', true) AND i.search @@ query LIMIT upto) c;
        counting := CASE WHEN counted < upto THEN counted ELSE greatest(counted, estimated) END;
    ELSE
        counting := estimated;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT w.id, ts_rank(w.search, w.query)::float8, $3::bigint FROM ('
        '  SELECT i.id, i.search, query FROM issues i, websearch_to_tsquery(''english'', $1) AS query'
        '  WHERE i.workspace_id = current_setting(''causeloop.workspace_id'', true) AND i.search @@ query'
        '  ORDER BY i.created_at DESC, i.id DESC LIMIT $2) w'
        USING q, cap, counting;
END
$$;
ALTER FUNCTION issue_search_window(text, int, int, int) OWNER TO causeloop_writer;
REVOKE ALL ON FUNCTION issue_search_window(text, int, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION issue_search_window(text, int, int, int) TO causeloop_reader;
