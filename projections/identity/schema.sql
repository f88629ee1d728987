-- The `identity` read model: users, organizations, workspaces and memberships. Applied with search_path set.
-- users, organizations and workspaces are global (a sign-in must find them before any workspace is known);
-- the API reads them by id only. Memberships are per workspace, under RLS like every tenant table.

CREATE TABLE IF NOT EXISTS users (
    id             text PRIMARY KEY,
    email          text NOT NULL UNIQUE,
    name           text NOT NULL,
    avatar_url     text,
    timezone       text NOT NULL DEFAULT 'UTC',
    locale         text NOT NULL DEFAULT 'en',
    clerk_user_id  text UNIQUE,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    version        int NOT NULL
);

CREATE TABLE IF NOT EXISTS organizations (
    id           text PRIMARY KEY,
    slug         text NOT NULL UNIQUE,
    name         text NOT NULL,
    plan         text NOT NULL DEFAULT 'free',
    seats_total  int NOT NULL DEFAULT 10,
    status       text NOT NULL DEFAULT 'active',
    created_at   timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS workspaces (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL,
    slug             text NOT NULL,
    name             text NOT NULL,
    status           text NOT NULL DEFAULT 'active',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          int NOT NULL
);

CREATE TABLE IF NOT EXISTS memberships (
    workspace_id  text NOT NULL,
    id            text NOT NULL,
    user_id       text NOT NULL,
    role          text NOT NULL,
    status        text NOT NULL,
    joined_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       int NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS memberships_by_id ON memberships (workspace_id, id);
CREATE INDEX IF NOT EXISTS memberships_by_user ON memberships (user_id);

CALL isolate_by_workspace('memberships');

-- A user's active memberships in every workspace, for sign-in (which workspace may this user enter?).
-- RLS shows the reader one workspace at a time; this function runs as causeloop_writer and returns only
-- the rows of the one user asked about.
CREATE OR REPLACE FUNCTION user_memberships(p_user_id text)
RETURNS TABLE (workspace_id text, id text, role text, status text, joined_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT m.workspace_id, m.id, m.role, m.status, m.joined_at
    FROM memberships m
    WHERE m.user_id = p_user_id
    ORDER BY m.joined_at, m.workspace_id
$$;
ALTER FUNCTION user_memberships(text) OWNER TO causeloop_writer;
REVOKE ALL ON FUNCTION user_memberships(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION user_memberships(text) TO causeloop_reader;

-- Members, invitations and operator provisioning (issue #3, members part).
ALTER TABLE workspaces ADD COLUMN IF NOT EXISTS timezone text NOT NULL DEFAULT 'UTC';
ALTER TABLE workspaces ADD COLUMN IF NOT EXISTS offboarded_at timestamptz;
ALTER TABLE organizations ADD COLUMN IF NOT EXISTS offboarded_at timestamptz;
CREATE INDEX IF NOT EXISTS workspaces_by_organization ON workspaces (organization_id);

-- One row per invitation stream (one per workspace + email). token_hash/expires_at are the latest token's;
-- earlier tokens of the same round stay valid on the write side (documented resend behaviour).
CREATE TABLE IF NOT EXISTS invitations (
    workspace_id      text NOT NULL,
    id                text NOT NULL,
    email             text NOT NULL,
    role              text NOT NULL,
    status            text NOT NULL,
    expires_at        timestamptz NOT NULL,
    token_hash        text NOT NULL,
    invited_by        text NOT NULL,
    accepted_user_id  text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    version           int NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX IF NOT EXISTS invitations_by_created ON invitations (workspace_id, created_at DESC, id DESC);

CALL isolate_by_workspace('invitations');
