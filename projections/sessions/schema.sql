-- The `sessions` read model (refresh-token families and TOTP factors) and the MFA attempt counters.
-- Applied with search_path set.

CREATE TABLE IF NOT EXISTS auth_sessions (
    workspace_id     text NOT NULL,
    id               text NOT NULL,
    user_id          text NOT NULL,
    status           text NOT NULL,
    refresh_hash     text NOT NULL,
    previous_hashes  text[] NOT NULL DEFAULT '{}',
    mfa              boolean NOT NULL,
    created_at       timestamptz NOT NULL,
    refreshed_at     timestamptz,
    version          int NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS auth_sessions_by_refresh_hash ON auth_sessions (refresh_hash);
CREATE INDEX IF NOT EXISTS auth_sessions_by_previous_hash ON auth_sessions USING gin (previous_hashes);
CREATE INDEX IF NOT EXISTS auth_sessions_by_user ON auth_sessions (workspace_id, user_id);

CALL isolate_by_workspace('auth_sessions');

-- A user's TOTP factor spans every workspace the user belongs to: global, like `users` (ciphertext only).
CREATE TABLE IF NOT EXISTS mfa_factors (
    user_id            text PRIMARY KEY,
    status             text NOT NULL,
    secret_ciphertext  text NOT NULL,
    created_at         timestamptz NOT NULL,
    activated_at       timestamptz,
    version            int NOT NULL
);

-- `POST /v1/auth/refresh` knows only the token, not its workspace: this finds the family by the token's hash
-- (current or already rotated away) across workspaces. It runs as causeloop_writer (policy USING (true))
-- and reveals only where the family lives; the refresh itself then loads the session from the event store.
CREATE OR REPLACE FUNCTION session_by_refresh_hash(h text)
RETURNS TABLE (workspace_id text, session_id text, user_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    (SELECT s.workspace_id, s.id, s.user_id FROM auth_sessions s WHERE s.refresh_hash = h
     UNION ALL
     SELECT s.workspace_id, s.id, s.user_id FROM auth_sessions s WHERE s.previous_hashes @> ARRAY[h])
    LIMIT 1
$$;
ALTER FUNCTION session_by_refresh_hash(text) OWNER TO causeloop_writer;
REVOKE ALL ON FUNCTION session_by_refresh_hash(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION session_by_refresh_hash(text) TO causeloop_reader;

-- Operational, not domain state (written by the API, like the rate-limit table): failed TOTP codes per user
-- in the current window, and the last time step accepted (a code is good once).
CREATE TABLE IF NOT EXISTS mfa_attempts (
    user_id       text PRIMARY KEY,
    window_start  bigint NOT NULL,
    failures      int NOT NULL,
    last_step     bigint NOT NULL DEFAULT 0
);
