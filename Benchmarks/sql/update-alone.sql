-- postgres-alone's UPDATE (Benchmarks/Sources/BenchPostgres) on the store's table: the
-- counter merged in and the idle deadline extended, only the version returned.
\set i random(1, 10000)
UPDATE sessionkit_sessions SET data = data || jsonb_build_object('counter', :i::int), last_seen_at = now(),
    idle_deadline = now() + interval '30 minutes', version = version + 1
WHERE key = sha256(:i::text::bytea) AND expires_at > now() RETURNING version;
