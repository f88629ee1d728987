-- The `workspace_settings` read model: one row per workspace that changed a setting (absent = every default),
-- and its onboarding progress. Applied with search_path set.

CREATE TABLE IF NOT EXISTS workspace_settings (
    workspace_id  text PRIMARY KEY,
    version       int NOT NULL,
    profile       jsonb NOT NULL,
    ai            jsonb NOT NULL,
    retention     jsonb NOT NULL,
    mfa_required  boolean NOT NULL DEFAULT false,
    updated_at    timestamptz
);

CREATE TABLE IF NOT EXISTS onboarding_state (
    workspace_id     text PRIMARY KEY,
    completed_steps  text[] NOT NULL DEFAULT '{}',
    current_step     text,
    updated_at       timestamptz
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['workspace_settings', 'onboarding_state'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_read ON %I', t);
        EXECUTE format('CREATE POLICY tenant_read ON %I FOR SELECT TO causeloop_reader '
                       'USING (workspace_id = current_setting(''causeloop.workspace_id'', true))', t);
        EXECUTE format('DROP POLICY IF EXISTS projector_write ON %I', t);
        EXECUTE format('CREATE POLICY projector_write ON %I TO causeloop_writer USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;

-- Is `slug` taken by another workspace of the organization: its current slug, or the slug it was
-- provisioned with (that one keys the workspace's stream, so it stays reserved after a rename)? Slugs live
-- in the identity projection's global `workspaces` table and, once renamed, in other tenants'
-- `workspace_settings` rows, which the reader's RLS hides: this runs as causeloop_writer and answers only
-- yes or no.
-- plpgsql, so the function can be created before the identity tables exist.
CREATE OR REPLACE FUNCTION workspace_slug_taken(p_organization_id text, p_slug text, p_workspace_id text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM workspaces w LEFT JOIN workspace_settings s ON s.workspace_id = w.id
        WHERE w.organization_id = p_organization_id AND w.id <> p_workspace_id
          AND (w.slug = p_slug OR s.profile ->> 'slug' = p_slug));
END $$;
ALTER FUNCTION workspace_slug_taken(text, text, text) OWNER TO causeloop_writer;
REVOKE ALL ON FUNCTION workspace_slug_taken(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workspace_slug_taken(text, text, text) TO causeloop_reader;
