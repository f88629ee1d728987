-- Shared infrastructure tables. Applied with search_path set to the deployment's schema.

CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name        text PRIMARY KEY,
    position    bigint NOT NULL DEFAULT 0,
    stream_seq  bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS relay_checkpoint (
    name        text PRIMARY KEY,
    position    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Why the relay refuses to publish into its stream (NULL: it does not); `relay status` shows it.
ALTER TABLE relay_checkpoint ADD COLUMN IF NOT EXISTS refused text;

-- This event store's id, made by the first `migrate` and never changed: the relay stamps it on every message
-- (header Causeloop-Store), so a stream holding another store's messages is recognised (docs/operations.md).
CREATE TABLE IF NOT EXISTS store_identity (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    store_id    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO store_identity (store_id) VALUES (gen_random_uuid()::text) ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS dead_letters (
    id           bigserial PRIMARY KEY,
    projection   text NOT NULL,
    position     bigint NOT NULL,
    stream_seq   bigint NOT NULL,
    subject      text NOT NULL,
    payload      bytea NOT NULL,
    error        text NOT NULL,
    deliveries   int NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    retried_at   timestamptz
);
-- Why a parked message is not this store's event (another store's, no store id, beyond the head); NULL: it is.
-- Such a message never moved a checkpoint and its position means nothing here, so it is keyed by stream message.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS foreign_reason text;
ALTER TABLE dead_letters DROP CONSTRAINT IF EXISTS dead_letters_projection_position_key;
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_own ON dead_letters (projection, position)
    WHERE foreign_reason IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_foreign ON dead_letters (projection, stream_seq)
    WHERE foreign_reason IS NOT NULL;

-- Rate-limit windows are shared by every API process; losing them in a crash is harmless, so no WAL.
CREATE UNLOGGED TABLE IF NOT EXISTS rate_limit_windows (
    client_key    text NOT NULL,
    window_start  bigint NOT NULL,
    hits          int NOT NULL,
    PRIMARY KEY (client_key, window_start)
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    workspace_id  text NOT NULL,
    principal     text NOT NULL,
    key           text NOT NULL,
    path          text NOT NULL,
    body_hash     text NOT NULL,
    state         text NOT NULL,
    status_code   int,
    headers       jsonb,
    body          bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, principal, key, path)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON idempotency_keys (created_at);
-- Which request holds an in-flight key: only the holder may complete or release it, even after a takeover.
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS claim_id text;

-- Row-Level Security for a read model's tables, the one definition every schema.sql calls
-- (`CALL isolate_by_workspace('t1', 't2')`): ENABLE + FORCE, readers (causeloop_reader) see only the
-- workspace named by the transaction's `causeloop.workspace_id`, the projector role writes every workspace.
-- No SET search_path on purpose: the tables are the caller's (a rebuild calls it for its shadow schema).
CREATE OR REPLACE PROCEDURE isolate_by_workspace(VARIADIC tables text[])
LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_read ON %I', t);
        EXECUTE format('CREATE POLICY tenant_read ON %I FOR SELECT TO causeloop_reader '
                       'USING (workspace_id = current_setting(''causeloop.workspace_id'', true))', t);
        EXECUTE format('DROP POLICY IF EXISTS projector_write ON %I', t);
        EXECUTE format('CREATE POLICY projector_write ON %I TO causeloop_writer USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;

-- Idempotency: the commands a claimed request runs are its steps; each step's result is recorded in the same
-- transaction as the events it appended, and only while the request still holds the claim (a retry that took it
-- over fences the original out). A lost claim aborts that transaction with SQLSTATE CL001.
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS steps jsonb NOT NULL DEFAULT '{}';
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS claimed_at timestamptz NOT NULL DEFAULT now();
CREATE OR REPLACE FUNCTION record_idempotent_step(p_workspace_id text, p_principal text, p_key text, p_path text,
                                                  p_claim_id text, p_step int, p_result jsonb)
RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE idempotency_keys SET steps = steps || jsonb_build_object(p_step::text, p_result)
     WHERE workspace_id = p_workspace_id AND principal = p_principal AND key = p_key AND path = p_path
       AND claim_id = p_claim_id AND state = 'in_flight' AND NOT steps ? p_step::text;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'idempotency claim % no longer holds step %', p_claim_id, p_step USING ERRCODE = 'CL001';
    END IF;
END $$;
