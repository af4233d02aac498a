#!/usr/bin/env python3
"""Writes the pgbench scripts of Scripts/bench-sql into a folder, from the SQL the code sends.

    python3 Scripts/lib/bench-sql-scripts.py OUT-DIR

The PostgreSQL store's statements are read from Sources/SessionKitPostgres/PostgresStatements.swift
(its schema, `LookUp`, `Change.update` and `Rotate`), postgres-alone's from
Benchmarks/Sources/BenchPostgres/PostgresAlone.swift, so what is measured is what is sent.
Each `$N` becomes a pgbench expression of the row number `:i` (1 to 10 000; a row's key is
sha256 of its number). A NULL parameter becomes `CASE WHEN :i < 0 THEN NULL END`, which the
plan cannot fold, as it cannot fold a bound NULL. A change is based on a current read, as on
the request path: its row leaves the values out.

setup.sql  the schema, and 10 000 live sessions holding the benchmarks' cart and a counter.
look-up         the store's look-up;               select-alone  postgres-alone's SELECT
apply           a plain change, deadlines left alone (most changes);
apply-touch     a plain change that refreshes the deadlines (a touch due);
apply-no-size   `apply` without its size check: not sent, but what the check costs;
change-before   the statement every change sent before 2026-12-04: `Rotate`'s WITH around
                the change, refreshing the deadlines;
change-with     the same, deadlines left alone;    update-alone  postgres-alone's UPDATE
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
STORE = open(os.path.join(ROOT, "Sources/SessionKitPostgres/PostgresStatements.swift")).read()
ALONE = open(os.path.join(ROOT, "Benchmarks/Sources/BenchPostgres/PostgresAlone.swift")).read()


def literal(source, start):
    """The Swift string literal that begins at or after `start`: its text, and where it ends."""
    quote = source.index('"', start)
    if source.startswith('"""', quote):
        end = source.index('"""', quote + 3)
        lines = source[quote + 3:end].split("\n")[1:-1]
        indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        return "\n".join(line[indent:] for line in lines).replace("\\\n", ""), end + 3
    end = quote + 1
    while source[end] != '"' or source[end - 1] == "\\":
        end += 1
    return source[quote + 1:end], end + 1


def after(source, marker):
    return literal(source, source.index(marker) + len(marker))[0]


def columns(data):
    return after(STORE, "static func columns(data: String) -> String {").replace("\\(data)", data)


def interpolated(sql):
    sql = re.sub(r'\\\(columns\(data: "((?:[^"\\]|\\.)*)"\)\)', lambda m: columns(m.group(1)), sql)
    sql = sql.replace("\\(columns)", columns("data::text"))
    # `Rotate` names `Change.update`, which is read first (and names nothing itself).
    return sql.replace("\\(Change.update)", UPDATE) if "\\(Change.update)" in sql else sql


def schema():
    body = STORE[STORE.index("static let schema = ["):STORE.index("static let columns")]
    statements, position = [], body.index("[")
    while True:
        quote = body.find('"', position)
        if quote < 0:
            return statements
        text, position = literal(body, quote)
        statements.append(text.replace('\\"', '"'))


def null():
    return "(CASE WHEN :i::int < 0 THEN NULL END)"


def substitute(sql, parameters):
    """`sql` with each `$N` replaced by `parameters[N]` (its cast, if any, kept)."""
    return re.sub(r"\$(\d+)", lambda m: parameters[int(m.group(1))], sql)


KEY = "sha256(:i::text::bytea)"
# The changed value as its parameter arrives: JSON text, which the statement reads as jsonb.
COUNTER = "('{\"counter\": ' || :i::int || '}')"
UPDATE = interpolated(after(STORE, "static let update = "))
LOOK_UP = interpolated(after(STORE[STORE.index("struct LookUp"):], "static let sql = "))
ROTATE = interpolated(after(STORE[STORE.index("struct Rotate"):], "static let sql = "))


def change(sql, touch):
    return substitute(sql, {
        1: KEY, 2: null(), 3: "(CASE WHEN :i::int < 0 THEN '{x}' ELSE '{}' END)",
        4: COUNTER,
        5: "(CASE WHEN :i::int > 0 THEN now() END)" if touch else null(),
        6: "(CASE WHEN :i::int > 0 THEN now() + interval '30 minutes' END)" if touch else null(),
        7: null(), 8: null(), 9: null(), 10: null(), 11: null(), 12: null(), 13: "now()", 14: null(), 15: "262144",
        # The read's version: the changed row's less one, so the values are left out.
        16: "(version - 1)", 17: null(),
    })


def alone(struct):
    return after(ALONE[ALONE.index(f"private struct {struct}"):], "static let sql = ").replace("bench_alone", "sessionkit_sessions")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    data = ("jsonb_build_object('cart', jsonb_build_object('items', jsonb_build_array("
            "jsonb_build_object('sku', 'ABC-123', 'quantity', 2, 'price', 1999), "
            "jsonb_build_object('sku', 'DEF-456', 'quantity', 1, 'price', 4999), "
            "jsonb_build_object('sku', 'GHI-789', 'quantity', 3, 'price', 599)), "
            "'currency', 'EUR', 'note', 'leave at the door please'), 'counter', 0)")
    setup = [s + ";" for s in schema()] + [
        "INSERT INTO sessionkit_sessions (key, data, created_at, last_seen_at, idle_deadline, absolute_deadline, persistent, version) "
        f"SELECT sha256(i::text::bytea), {data}, now(), now(), now() + interval '30 days', now() + interval '30 days', false, 1 "
        "FROM generate_series(1, 10000) i;",
        "VACUUM ANALYZE sessionkit_sessions;",
    ]
    size_check = re.compile(r"\n\s*AND octet_length\([^\n]*")
    scripts = {
        "setup": "\n".join(setup),
        "look-up": substitute(LOOK_UP, {1: KEY, 2: "now()"}),
        "apply": change(UPDATE, touch=False),
        "apply-touch": change(UPDATE, touch=True),
        "apply-no-size": change(size_check.sub("", UPDATE), touch=False),
        "change-before": change(ROTATE, touch=True),
        "change-with": change(ROTATE, touch=False),
        "select-alone": substitute(alone("Select"), {1: KEY, 2: "now()"}),
        "update-alone": substitute(alone("Update"), {
            1: KEY, 2: COUNTER, 3: "now()", 4: "now() + interval '30 minutes'"}),
    }
    for name, sql in scripts.items():
        with open(os.path.join(out, name + ".sql"), "w") as file:
            file.write(sql + "\n" if name == "setup" else "\\set i random(1, 10000)\n" + sql + ";\n")


main()
