-- The PostgreSQL store's table (schema version 3, as PostgresStatements.schema creates it)
-- with 10 000 live sessions, each holding the benchmarks' cart and a counter (about 240
-- bytes of JSON). Keys are sha256 of the row's number, so a script names a row by number.
CREATE TABLE sessionkit_sessions (
    key bytea PRIMARY KEY,
    data jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    idle_deadline timestamptz NOT NULL,
    absolute_deadline timestamptz NOT NULL,
    expires_at timestamptz GENERATED ALWAYS AS (LEAST(idle_deadline, absolute_deadline)) STORED,
    user_id text,
    authenticated_at timestamptz,
    persistent boolean NOT NULL,
    client_ip text,
    user_agent text,
    version bigint NOT NULL,
    device_binding text
);
CREATE INDEX sessionkit_sessions_expires_at ON sessionkit_sessions (expires_at);
CREATE TABLE sessionkit_ended (key bytea PRIMARY KEY, until timestamptz NOT NULL);
CREATE INDEX sessionkit_sessions_user_id ON sessionkit_sessions (user_id) WHERE user_id IS NOT NULL;
INSERT INTO sessionkit_sessions (key, data, created_at, last_seen_at, idle_deadline, absolute_deadline, persistent, version)
SELECT sha256(i::text::bytea),
    jsonb_build_object('cart', jsonb_build_object('items', jsonb_build_array(
        jsonb_build_object('sku', 'ABC-123', 'quantity', 2, 'price', 1999),
        jsonb_build_object('sku', 'DEF-456', 'quantity', 1, 'price', 4999),
        jsonb_build_object('sku', 'GHI-789', 'quantity', 3, 'price', 599)),
        'currency', 'EUR', 'note', 'leave at the door please'), 'counter', 0),
    now(), now(), now() + interval '30 days', now() + interval '30 days', false, 1
FROM generate_series(1, 10000) i;
VACUUM ANALYZE sessionkit_sessions;
