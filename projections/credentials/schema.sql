-- The `credentials` read model: API tokens (personal, service-account, SCIM) and service accounts.
-- Applied with search_path set. Secrets are never stored: `secret_hash` is SHA-256 hex.

CREATE TABLE IF NOT EXISTS api_tokens (
    workspace_id  text NOT NULL,
    id            text NOT NULL,
    kind          text NOT NULL,
    owner_id      text,
    name          text NOT NULL,
    scopes        text[] NOT NULL,
    secret_hash   text NOT NULL,
    status        text NOT NULL,
    expires_at    timestamptz,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    rotated_at    timestamptz,
    revoked_at    timestamptz,
    version       int NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_by_secret ON api_tokens (secret_hash);
CREATE INDEX IF NOT EXISTS api_tokens_by_owner ON api_tokens (workspace_id, owner_id, created_at, id);

CREATE TABLE IF NOT EXISTS service_accounts (
    workspace_id  text NOT NULL,
    id            text NOT NULL,
    name          text NOT NULL,
    description   text NOT NULL,
    role          text NOT NULL,
    status        text NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       int NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Operational, not domain state (no event, not rebuilt): when a token last authenticated, written by the
-- API at most once a minute per token through touch_token() below.
CREATE TABLE IF NOT EXISTS token_usage (
    token_id      text PRIMARY KEY,
    workspace_id  text NOT NULL,
    last_used_at  timestamptz NOT NULL
);

CALL isolate_by_workspace('api_tokens', 'service_accounts', 'token_usage');

-- Bearer-token authentication. The workspace is what the token tells us, so no tenant context exists yet
-- and RLS would hide every row from causeloop_reader. This function runs as causeloop_writer (policy
-- USING (true)) and answers only for the exact secret hash: a caller learns nothing about any token whose
-- secret it does not hold. It returns the token only when usable: active, unexpired, and (for a
-- service-account token) of an account that is not deleted, with that account's CURRENT role as `role`.
-- One round trip per request: it also records `last_used_at` in token_usage, written at most once a
-- minute per token (a plain read otherwise, so the hot path takes no row lock). A personal token answers with
-- its owner's CURRENT role and only while that membership is active (identity projection's `memberships`).
CREATE OR REPLACE FUNCTION authenticate_token(hash text)
RETURNS TABLE (token_id text, workspace_id text, kind text, owner_id text, scopes text[],
               expires_at timestamptz, role text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    found_token record;
    last_used timestamptz;
    member_role text;
BEGIN
    SELECT t.id, t.workspace_id, t.kind, t.owner_id, t.scopes, t.expires_at, s.role AS account_role
    INTO found_token
    FROM api_tokens t
    LEFT JOIN service_accounts s ON t.kind = 'service_account' AND s.workspace_id = t.workspace_id
                                    AND s.id = t.owner_id
    WHERE t.secret_hash = hash AND t.status = 'active' AND (t.expires_at IS NULL OR t.expires_at > now())
      AND (t.kind <> 'service_account' OR s.status = 'active');
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF found_token.kind = 'personal' THEN
        SELECT m.role INTO member_role FROM memberships m
        WHERE m.workspace_id = found_token.workspace_id AND m.user_id = found_token.owner_id AND m.status = 'active';
        IF NOT FOUND THEN
            RETURN;
        END IF;
    END IF;
    SELECT u.last_used_at INTO last_used FROM token_usage u WHERE u.token_id = found_token.id;
    IF last_used IS NULL OR last_used < now() - interval '1 minute' THEN
        INSERT INTO token_usage AS u (token_id, workspace_id, last_used_at)
        VALUES (found_token.id, found_token.workspace_id, now())
        ON CONFLICT (token_id) DO UPDATE SET last_used_at = excluded.last_used_at
        WHERE u.last_used_at < excluded.last_used_at - interval '1 minute';
    END IF;
    token_id := found_token.id;
    workspace_id := found_token.workspace_id;
    kind := found_token.kind;
    owner_id := found_token.owner_id;
    scopes := found_token.scopes;
    expires_at := found_token.expires_at;
    role := coalesce(found_token.account_role, member_role);
    RETURN NEXT;
END
$$;
ALTER FUNCTION authenticate_token(text) OWNER TO causeloop_writer;
REVOKE ALL ON FUNCTION authenticate_token(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION authenticate_token(text) TO causeloop_reader;
