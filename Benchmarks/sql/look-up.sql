-- The store's look-up (`LookUp`): a live session, or the ended key's row, in one statement.
\set i random(1, 10000)
(SELECT key, data::text, created_at, last_seen_at, idle_deadline, absolute_deadline, user_id, authenticated_at,
    persistent, client_ip, user_agent, version, device_binding
 FROM sessionkit_sessions WHERE key = sha256(:i::text::bytea) AND expires_at > now())
UNION ALL
(SELECT key, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::text,
    NULL::timestamptz, NULL::boolean, NULL::text, NULL::text, NULL::bigint, NULL::text
 FROM sessionkit_ended WHERE key = sha256(:i::text::bytea) AND until > now())
LIMIT 1;
