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
