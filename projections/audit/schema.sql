-- The `audit` read model: one immutable, hash-chained entry per event, per workspace. Applied with search_path set.

CREATE TABLE IF NOT EXISTS audit_log (
    workspace_id  text NOT NULL,
    id            text NOT NULL,
    seq           bigint NOT NULL,
    position      bigint NOT NULL,
    occurred_at   timestamptz NOT NULL,
    actor         jsonb NOT NULL,
    action        text NOT NULL,
    category      text NOT NULL,
    target_type   text NOT NULL,
    target_id     text,
    metadata      jsonb NOT NULL DEFAULT '{}',
    ip            text,
    prev_hash     text NOT NULL,
    hash          text NOT NULL,
    search        tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', action || ' ' || replace(replace(action, '.', ' '), '_', ' ') || ' '
                    || coalesce(actor->>'id', '') || ' ' || target_type || ' ' || coalesce(target_id, ''))
        || jsonb_to_tsvector('simple', metadata, '["string", "numeric"]')
    ) STORED,
    PRIMARY KEY (workspace_id, seq),
    UNIQUE (workspace_id, position)
);
CREATE UNIQUE INDEX IF NOT EXISTS audit_log_by_id ON audit_log (workspace_id, id);
CREATE INDEX IF NOT EXISTS audit_log_by_time ON audit_log (workspace_id, occurred_at);
CREATE INDEX IF NOT EXISTS audit_log_by_actor ON audit_log (workspace_id, (actor->>'id'), seq);
CREATE INDEX IF NOT EXISTS audit_log_by_action ON audit_log (workspace_id, action text_pattern_ops, seq);
CREATE INDEX IF NOT EXISTS audit_log_by_category ON audit_log (workspace_id, category, seq);
CREATE INDEX IF NOT EXISTS audit_log_search ON audit_log USING gin (search);
-- New entries wait in GIN's pending list; whichever write overflows it merges the whole list, and a 4 MB list
-- (the default) stalls that projector batch for a long moment. A small list merges often and briefly.
ALTER INDEX audit_log_search SET (gin_pending_list_limit = 256);

-- The projector appends; UPDATE and DELETE are refused below whatever the role.
CALL isolate_by_workspace('audit_log');

-- Immutable: nobody edits or deletes an entry, whatever their grants (only the projector role has any beyond
-- SELECT). A rebuild never needs to: it fills a fresh table in a shadow schema and swaps it in by DROP TABLE
-- and ALTER TABLE … SET SCHEMA, which row triggers do not see (and which need the table's owner).
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER IF EXISTS audit_log_immutable ON audit_log;
CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_log FROM causeloop_reader;

-- Full-text matches in the current workspace, run as the writer role so that the GIN index is usable
-- (under the reader's RLS policy the non-LEAKPROOF `@@` would be applied after it; see issue_search).
CREATE OR REPLACE FUNCTION audit_search(q text)
RETURNS TABLE (match_seq bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT a.seq FROM audit_log a, websearch_to_tsquery('simple', q) AS query
    WHERE a.workspace_id = current_setting('causeloop.workspace_id', true) AND a.search @@ query
$$;
ALTER FUNCTION audit_search(text) OWNER TO causeloop_writer;
REVOKE ALL ON FUNCTION audit_search(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_search(text) TO causeloop_reader;
