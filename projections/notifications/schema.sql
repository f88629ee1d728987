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

-- Deliveries to the users' outside channels (e-mail, Slack, Teams, PagerDuty): one row per notice, user and
-- channel, decided by the projector in the transaction that writes the feed, and sent by the channel-delivery
-- worker (workers/channel_delivery.py). Operational state, not part of the read model: left out of the projection's
-- TABLES, so a rebuild writes these rows into its shadow schema, where they are dropped unsent, and the live rows
-- (with what was already sent) stay. `batch` is the end of the digest period the notice waits for (null: realtime);
-- `target_ciphertext` the channel's sealed URL or key when decided (null for e-mail).
CREATE TABLE IF NOT EXISTS notification_deliveries (
    workspace_id       text NOT NULL,
    user_id            text NOT NULL,
    notification_id    text NOT NULL,
    channel            text NOT NULL,
    type               text NOT NULL,
    title              text NOT NULL,
    entity_type        text,
    entity_id          text,
    severity           integer,
    created_at         timestamptz NOT NULL,
    position           bigint NOT NULL,
    target_ciphertext  text,
    digest             text NOT NULL,
    batch              timestamptz,
    status             text NOT NULL DEFAULT 'pending',
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL,
    first_attempt_at   timestamptz,
    last_attempt_at    timestamptz,
    last_status_code   integer,
    last_error         text,
    sent_at            timestamptz,
    PRIMARY KEY (workspace_id, user_id, notification_id, channel)
);
CREATE INDEX IF NOT EXISTS notification_deliveries_due ON notification_deliveries (next_attempt_at)
    WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS notification_delivery_attempts (
    workspace_id     text NOT NULL,
    user_id          text NOT NULL,
    notification_id  text NOT NULL,
    channel          text NOT NULL,
    attempt          integer NOT NULL,
    started_at       timestamptz NOT NULL,
    status_code      integer,
    error            text,
    succeeded        boolean NOT NULL,
    PRIMARY KEY (workspace_id, user_id, notification_id, channel, attempt)
);

CALL isolate_by_workspace('notification_deliveries', 'notification_delivery_attempts');
