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
