-- The `notifications` read model: each user's in-app feed, projected from events, and the recipients it is
-- addressed to (the workspace's active members, kept from membership events). Applied with search_path set.

CREATE TABLE IF NOT EXISTS notification_recipients (
    workspace_id  text NOT NULL,
    user_id       text NOT NULL,
    active        boolean NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);

CREATE TABLE IF NOT EXISTS notifications (
    workspace_id  text NOT NULL,
    user_id       text NOT NULL,
    id            text NOT NULL,
    type          text NOT NULL,
    title         text NOT NULL,
    entity_type   text,
    entity_id     text,
    read          boolean NOT NULL DEFAULT false,
    dismissed     boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    position      bigint NOT NULL,
    PRIMARY KEY (workspace_id, user_id, id)
);
CREATE INDEX IF NOT EXISTS notifications_feed ON notifications (workspace_id, user_id, position DESC);

CALL isolate_by_workspace('notification_recipients', 'notifications');

-- A notification's id: `ntf_` + 26 Crockford characters (the ULID form of every public id) taken from the md5, in
-- hex, of its source event's id and its user (deterministic: re-projecting never duplicates a notification). Hex
-- digits are Crockford digits; the first is folded into 0-7, as a ULID's first character is. A plain expression
-- (Postgres inlines it): it runs for every notice of every recipient on the projector's path.
CREATE OR REPLACE FUNCTION notification_ulid(md5_hex text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 'ntf_' || translate(substr(md5_hex, 1, 1), '89abcdef', '01234567') || upper(substr(md5_hex, 2, 25))
$$;

-- The id a notification has now, for an id stored in a read or dismissal event before ids took the ULID form
-- (`ntf_` + the same md5 in hex).
CREATE OR REPLACE FUNCTION notification_id_now(id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN id ~ '^ntf_[0-9a-f]{32}$' THEN notification_ulid(substr(id, 5)) ELSE id END
$$;

-- Patterns as the feed names them (folded here, not read from the `patterns` read model, so a rebuild gives the
-- same titles), who watches which, and each user's preferences (what the feed leaves out for them).
CREATE TABLE IF NOT EXISTS notification_patterns (
    workspace_id  text NOT NULL,
    pattern_id    text NOT NULL,
    name          text NOT NULL,
    PRIMARY KEY (workspace_id, pattern_id)
);

CREATE TABLE IF NOT EXISTS pattern_watchers (
    workspace_id  text NOT NULL,
    pattern_id    text NOT NULL,
    user_id       text NOT NULL,
    since         timestamptz NOT NULL,
    position      bigint NOT NULL,
    PRIMARY KEY (workspace_id, pattern_id, user_id)
);
CREATE INDEX IF NOT EXISTS pattern_watchers_by_user ON pattern_watchers (workspace_id, user_id, position DESC);

CREATE TABLE IF NOT EXISTS notification_preferences (
    workspace_id        text NOT NULL,
    user_id             text NOT NULL,
    email               boolean NOT NULL,
    slack_ciphertext    text,
    slack_hint          text,
    teams_ciphertext    text,
    teams_hint          text,
    pagerduty_ciphertext text,
    pagerduty_hint      text,
    min_severity        text NOT NULL,
    severity_floor      integer NOT NULL,
    min_risk_score      integer NOT NULL,
    digest              text NOT NULL,
    events              jsonb NOT NULL,
    muted               text[] NOT NULL,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);

CALL isolate_by_workspace('notification_patterns', 'pattern_watchers', 'notification_preferences');
