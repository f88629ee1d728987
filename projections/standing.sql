-- The per-request re-check of a token's caller (api/core/principals.py), across read models: the workspace's
-- status, the caller's membership, the token's sign-in session and the MFA requirement, in ONE parametrized
-- call (a prepared statement, no tenant transaction around it). Like user_memberships it runs as
-- causeloop_writer and answers only for the one workspace, user and session asked about.
-- Applied after every read model's schema (it reads four of them). PL/pgSQL, not SQL: a SQL function that
-- cannot be inlined (SECURITY DEFINER, SET) plans its body on every call, which cost about three times the
-- lookups themselves; PL/pgSQL keeps the plan for the session. Postgres drops a kept plan when a table it
-- reads is renamed or dropped, so a rebuild that swaps one of them in is still seen on the next call.
CREATE OR REPLACE FUNCTION principal_standing(p_workspace_id text, p_user_id text, p_session_id text)
RETURNS TABLE (workspace_status text, member_role text, member_status text, session_status text,
               mfa_required boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    -- One row whatever exists: each read model's row is joined by its key (the membership once for both of
    -- its columns), and an absent one reads as NULL.
    RETURN QUERY SELECT w.status, m.role, m.status, s.status, coalesce(ws.mfa_required, false)
        FROM (SELECT) AS one
        LEFT JOIN workspaces w ON w.id = p_workspace_id
        LEFT JOIN memberships m ON m.workspace_id = p_workspace_id AND m.user_id = p_user_id
        LEFT JOIN auth_sessions s ON s.workspace_id = p_workspace_id AND s.id = p_session_id
        LEFT JOIN workspace_settings ws ON ws.workspace_id = p_workspace_id;
END
$$;
ALTER FUNCTION principal_standing(text, text, text) OWNER TO causeloop_writer;
REVOKE ALL ON FUNCTION principal_standing(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION principal_standing(text, text, text) TO causeloop_reader;
