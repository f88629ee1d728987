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

CALL isolate_by_workspace('workspace_settings', 'onboarding_state');
