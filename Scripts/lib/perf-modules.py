"""Where a server's CPU goes, by module: reads `perf script -F ip,sym,dso` (call graphs) on
standard input and prints each module's share of the samples.
    perf script -i perf.data -F ip,sym,dso | python3 Scripts/lib/perf-modules.py [REQUESTS CPU-US-PER-REQUEST [MODULE]]
A sample in the kernel counts as the kernel's. Otherwise it counts for the innermost frame of
a Swift module other than the standard library and the concurrency library (a retain, a
malloc or a generic dictionary lookup counts for the module whose code called it); a sample
with no such frame counts for the library it stopped in (Swift's runtime, its task executor,
libc, libdispatch). With CPU-US-PER-REQUEST, each share is also shown in microseconds per
request. With MODULE (say, SessionKit), the functions its samples counted for follow, most first
(mangled; pipe through `swift demangle --simplified`)."""
import collections
import re
import sys

# Modules reported under one name.
GROUPS = [
    (re.compile(r"^SessionKit"), "SessionKit"),
    (re.compile(r"^(NIO|_NIO|NIOCore|NIOPosix|NIOHTTP1|NIOHTTPTypes|NIOHTTPTypesHTTP1|NIOConcurrencyHelpers|NIOEmbedded|NIOExtras|NIOSSL)"), "SwiftNIO"),
    (re.compile(r"^(Hummingbird|HummingbirdCore|HummingbirdAuth|HummingbirdRouter)"), "Hummingbird"),
    (re.compile(r"^(Vapor|RoutingKit|ConsoleKit|AsyncKit|MultipartKit|WebSocketKit)"), "Vapor"),
    (re.compile(r"^(PostgresNIO|_ConnectionPoolModule|ConnectionPoolModule)"), "postgres-nio"),
    (re.compile(r"^(Fluent|FluentKit|SQLKit|PostgresKit|SQLiteKit|SQLiteNIO|FluentPostgresDriver|FluentSQLiteDriver)"), "Fluent"),
    (re.compile(r"^(Foundation|FoundationEssentials|FoundationInternationalization|_FoundationCShims)"), "Foundation"),
    (re.compile(r"^(Logging|Metrics|Tracing|Instrumentation|ServiceContextModule|ServiceLifecycle|UnixSignals)"), "swift-log/metrics/tracing/service-lifecycle"),
    (re.compile(r"^(Bench|BenchFixtures|BenchServer|BenchVapor)"), "the benchmark's routes"),
]
MODULE = re.compile(r"^\$s(\d+)")


def module(symbol):
    """The Swift module a mangled symbol belongs to, or None (not Swift, or the standard
    library `$ss…`, the concurrency library's substitutions `$sS…`)."""
    match = MODULE.match(symbol)
    if not match:
        return None
    length = int(match.group(1))
    start = match.end()
    name = symbol[start:start + length]
    if name in ("Swift", "_Concurrency", "Synchronization", "_StringProcessing"):
        return None
    for pattern, group in GROUPS:
        if pattern.match(name):
            return group
    return name


def library(dso):
    if "kernel" in dso:
        return "kernel"
    for part, name in (("libswiftCore", "Swift runtime (retain/release, metadata)"), ("libswift_Concurrency", "Swift concurrency runtime (tasks, executors)"),
                       ("libdispatch", "libdispatch (the task executor's threads)"), ("libc.so", "libc (malloc, locks)"), ("libFoundation", "Foundation")):
        if part in dso:
            return name
    return dso.rsplit("/", 1)[-1].strip("()")


def main():
    counts = collections.Counter()
    functions = collections.Counter()
    detail = sys.argv[3] if len(sys.argv) > 3 else None
    frames = []

    def finish():
        if not frames:
            return
        leaf_dso = frames[0][1]
        if "kernel" in leaf_dso:
            counts["kernel"] += 1
        else:
            owner = next(((m, symbol) for m, symbol in ((module(symbol), symbol) for symbol, _ in frames) if m), None)
            counts[owner[0] if owner else library(leaf_dso)] += 1
            if owner and owner[0] == detail:
                functions[owner[1]] += 1
        frames.clear()

    for line in sys.stdin:
        if not line.strip():
            finish()
            continue
        if not line.startswith((" ", "\t")):
            finish()
            continue
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        rest = parts[1].rstrip()
        dso = rest[rest.rfind("("):] if rest.endswith(")") else ""
        symbol = rest[: rest.rfind("(")].strip() if dso else rest
        frames.append((symbol.split("+", 1)[0], dso))
    finish()
    total = sum(counts.values())
    per_request = float(sys.argv[2]) if len(sys.argv) > 2 else None
    print(f"{'where':<48} {'share':>7}" + (f" {'us/request':>11}" if per_request else ""))
    for name, count in counts.most_common():
        share = count / total
        print(f"{name:<48} {share:7.1%}" + (f" {share * per_request:11.1f}" if per_request else ""))
    print(f"{total} samples")
    if detail:
        for symbol, count in functions.most_common(40):
            print(f"{count / total:7.1%} {symbol}")


main()
