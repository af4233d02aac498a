"""Where a server's CPU goes, by what the work was for: reads `perf script -F ip,sym` of a
recording with whole call chains (`perf record --call-graph dwarf`), demangled, on standard
input, and prints each part's share of the samples.
    perf script -i perf.data -F ip,sym | swift demangle --simplified | python3 Scripts/lib/perf-callers.py [CPU-US-PER-REQUEST]
Scripts/lib/perf-modules.py counts a sample for the module whose code ran; this counts it for
the first part below whose functions are anywhere in its call chain, so that an allocation,
a lock or a system call counts for the work that made it. The order matters: a sample of
postgres-nio decoding a row called from the session's decoding is the decoding's.
A task's job starts afresh at `swift_job_run`, so the chain of a sample ends there: the
timers' sleeps, a task's creation and its completion count for what is in their own chains.
With CPU-US-PER-REQUEST, each share is also shown in microseconds per request."""
import collections
import re
import sys

MIDDLEWARE = "SessionKit's middleware and manager"
HTTP = "HTTP and the handler (Hummingbird, Vapor, SwiftNIO's HTTP)"
PARTS = [
    # Task.sleep's own work: postgres-nio's pool times each idle connection (its idle and
    # keep-alive timers), and the manager's time limit ticks while calls are in flight.
    ("timers (Task.sleep: postgres-nio's pool, the time limit's ticker)", r"runTimer|Task<>\._sleep"),
    ("the session's decoding (rows, hashes, JSON values)",
     r"PostgresStatements|SessionValuesJSON|StoredSession|ScalarJSON|SessionValue\.|RedisSessionStore\.session"),
    ("the store's client (postgres-nio, the Redis client, SQLite)",
     r"PostgresClient|ConnectionPool|PoolStateMachine|PostgresChannelHandler|PSQL|PostgresRow|PostgresConnection"
     r"|RedisClient|RedisConnection|RESP|SQLite"),
    ("the manager's time limit (Deadline: a task per call)", r"(^|[ (])Deadline\."),
    (MIDDLEWARE, r"SessionKitMiddleware|SessionManager|RequestSession|SessionToken|SessionKit\."),
    (HTTP, r"Hummingbird|HTTP|NIOAsyncChannel|Responder|Router"),
]
PARTS = [(name, re.compile(pattern)) for name, pattern in PARTS]
REST = "the rest (event-loop waits, task switches, the runtime)"
# The framework's own request path, which a session middleware calls into: the responders and
# routers after it (and the handler they run), and the completion of the response's promise
# (on Vapor, whose responders answer futures: the response is written from there).
FRAMEWORK = re.compile(r"Responder\.respond|Router\.route|RouterResponder|EventLoopPromise\._resolve|EventLoopPromise\.completeWith")


def part(chain):
    """The part a sample counts for; `chain` is its frames, innermost first."""
    text = "\n".join(chain)
    for name, pattern in PARTS:
        if not pattern.search(text):
            continue
        if name == MIDDLEWARE:
            # Work the framework does inside the middleware's call (its responders, the
            # handler, writing the response) is the framework's, not SessionKit's: the
            # middleware's innermost frame must come before any of the framework's.
            innermost = next(i for i, frame in enumerate(chain) if pattern.search(frame))
            if any(FRAMEWORK.search(frame) for frame in chain[:innermost]):
                return HTTP
        return name
    return REST


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else None
    counts = collections.Counter()
    chain = []
    for line in sys.stdin:
        if line.startswith((" ", "\t")) and line.strip():
            chain.append(line.strip())
            continue
        # A header line or a blank line ends the sample before it.
        if chain:
            counts[part(chain)] += 1
            chain = []
    if chain:
        counts[part(chain)] += 1
    total = sum(counts.values())
    if total == 0:
        print("no samples")
        return
    for name, count in counts.most_common():
        share = 100 * count / total
        print(f"{name:66s} {share:5.1f}%" + (f" {scale * count / total:8.1f}" if scale else ""))
    print(f"{total} samples")


main()
