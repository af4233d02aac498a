-- postgres-alone's SELECT (Benchmarks/Sources/BenchPostgres) on the store's table.
\set i random(1, 10000)
SELECT data::text, last_seen_at, idle_deadline, version FROM sessionkit_sessions
WHERE key = sha256(:i::text::bytea) AND expires_at > now();
