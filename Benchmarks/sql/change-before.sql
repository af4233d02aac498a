-- A session's change as the request path sends it, the caller's read current (the row
-- leaves the values out). A parameter that is NULL is a CASE expression of :i, which the
-- plan cannot fold, as it cannot fold a bound NULL. The statement before 2026-12-04 (a WITH for
-- the rotation's ended key), refreshing the deadlines as every change used to.
\set i random(1, 10000)
WITH changed AS (UPDATE sessionkit_sessions SET
    key = coalesce((CASE WHEN :i::int < 0 THEN '\x00'::bytea END), key),
    data = (data - (CASE WHEN :i::int < 0 THEN '{x}'::text[] ELSE '{}'::text[] END)) || jsonb_build_object('counter', :i::int),
    last_seen_at = coalesce((CASE WHEN :i::int > 0 THEN now() END), last_seen_at),
    idle_deadline = coalesce((CASE WHEN :i::int > 0 THEN now() + interval '30 minutes' END), idle_deadline),
    absolute_deadline = coalesce((CASE WHEN :i::int < 0 THEN now() END), absolute_deadline),
    persistent = coalesce((CASE WHEN :i::int < 0 THEN true END), persistent),
    user_id = coalesce((CASE WHEN :i::int < 0 THEN 'u' END), user_id),
    authenticated_at = coalesce((CASE WHEN :i::int < 0 THEN now() END), authenticated_at),
    client_ip = CASE WHEN (CASE WHEN :i::int < 0 THEN 'u' END) IS NULL THEN client_ip ELSE (CASE WHEN :i::int < 0 THEN 'u' END) END,
    user_agent = CASE WHEN (CASE WHEN :i::int < 0 THEN 'u' END) IS NULL THEN user_agent ELSE (CASE WHEN :i::int < 0 THEN 'u' END) END,
    version = version + 1
WHERE key = sha256(:i::text::bytea) AND expires_at > now() AND ((CASE WHEN :i::int < 0 THEN 1::bigint END) IS NULL OR version = (CASE WHEN :i::int < 0 THEN 1::bigint END))
    AND octet_length(((data - (CASE WHEN :i::int < 0 THEN '{x}'::text[] ELSE '{}'::text[] END)) || jsonb_build_object('counter', :i::int))::text) <= 262144
RETURNING key, CASE WHEN :i::int > 0 THEN NULL ELSE data::text END, created_at, last_seen_at, idle_deadline,
    absolute_deadline, user_id, authenticated_at, persistent, client_ip, user_agent, version, device_binding),
remembered AS (
    INSERT INTO sessionkit_ended (key, until) SELECT sha256(:i::text::bytea), (CASE WHEN :i::int < 0 THEN now() END) FROM changed
    WHERE (CASE WHEN :i::int < 0 THEN now() END) IS NOT NULL
    ON CONFLICT (key) DO UPDATE SET until = excluded.until)
SELECT * FROM changed;
