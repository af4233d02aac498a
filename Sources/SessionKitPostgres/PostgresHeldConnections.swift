#if PostgreSQL
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Connections the store keeps leased from the application's `PostgresClient` for the
/// request path's look-ups and changes, which several calls share at once (postgres-nio
/// queues a connection's statements).
///
/// They exist for the time limit. postgres-nio does not end a statement when its task is
/// cancelled, so a call through the pool can be cut short only by leaving it behind in a
/// task of its own, which costs every call a task and the pool's idle and keep-alive timers
/// each time the connection goes back. A call on a held connection runs on its caller's
/// task instead: at the limit the connection is closed, which ends every statement on it,
/// and a new one is leased in its place.
///
/// The held connections never take the pool's last: a connection is held only once the
/// pool has lent one more beside it (given back at once), so the calls that go through the
/// pool (the store's sign-ins and rotations, the application's own queries) always find one,
/// and a client with fewer connections than wanted holds fewer. At start-up the holders lease
/// one after another, each starting the next once it holds its connection, so that they do
/// not take turns refusing one another; one the pool cannot spare a connection for asks
/// again later. Holders whose connections closed at once (at a time limit, or when the
/// server went) lease again together: on a small pool some may refuse one another for a
/// while, but none holds the pool's last.
///
/// Leasing starts with the first call. While none is held (at start-up, or after a close
/// while the server is away) ``connection()`` answers `nil` and the call goes through the
/// pool. When the store goes, its connections go back to the pool.
final class PostgresHeldConnections: Sendable {
    private let holdings: Holdings
    private let tasks: HolderTasks
    private let wanted: Int

    /// Up to `count` connections of `client`'s; none when `count` is 0 or less.
    init(client: PostgresClient, count: Int, logger: Logger) {
        wanted = max(0, count)
        holdings = Holdings()
        tasks = HolderTasks(client: client, holdings: holdings, logger: logger)
    }

    deinit { holdings.stop() }

    /// How many connections are held now.
    var count: Int { holdings.count }

    /// An open held connection, taking turns among them, or `nil` while none is held.
    func connection() -> PostgresConnection? {
        guard wanted > 0 else { return nil }
        let (connection, start) = holdings.next()
        if start { tasks.start(remaining: wanted) }
        return connection
    }

    /// The holders: a task per connection to hold, each leasing and holding one. They work
    /// with this value, not with the held connections' owner, whose going stops them.
    private struct HolderTasks: Sendable {
        /// How long the pool has to lend the connection that shows it can spare one to hold:
        /// time to open one, and short, since the one to hold waits meanwhile.
        static let spareWithin = Duration.milliseconds(500)

        let client: PostgresClient
        let holdings: Holdings
        let logger: Logger

        /// Starts the holder of one connection, which starts the next (`remaining` counting
        /// itself) once it holds its own.
        func start(remaining: Int) {
            guard remaining > 0 else { return }
            Task { await hold(remaining: remaining) }
        }

        /// Leases a connection and holds it until it closes, again and again, until the store
        /// goes; holds none while the pool cannot spare one more beside it, and asks again
        /// after a pause that grows to 30 seconds.
        private func hold(remaining: Int) async {
            var startedNext = false
            var pause = Duration.milliseconds(250)
            while !holdings.isStopped {
                var held = false
                do {
                    held = try await client.withConnection { connection in
                        guard await poolLendsAnother() else { return false }
                        if !startedNext {
                            startedNext = true
                            start(remaining: remaining - 1)
                        }
                        await holdings.hold(connection)
                        return true
                    }
                    if !held { logger.debug("the client's pool has no connection to spare for session calls") }
                } catch {
                    // The pool refuses leases while it cannot connect for long, or once it has shut down.
                    logger.debug("no connection to hold for session calls", metadata: ["error": "\(error)"])
                }
                if held {
                    pause = .milliseconds(250)
                } else {
                    try? await Task.sleep(for: pause)
                    pause = min(pause * 2, .seconds(30))
                }
            }
        }

        /// Whether the pool lends a connection within ``spareWithin`` (one more beside those
        /// leased already), which goes back at once. A lease still waiting at the limit is
        /// withdrawn: postgres-nio ends the wait for a lease when its task is cancelled.
        private func poolLendsAnother() async -> Bool {
            await withTaskGroup(of: Bool.self) { [client] group in
                group.addTask { (try? await client.withConnection { _ in true }) ?? false }
                group.addTask {
                    try? await Task.sleep(for: Self.spareWithin)
                    return false
                }
                defer { group.cancelAll() }
                return await group.next() ?? false
            }
        }
    }

    /// The held connections and the holders waiting for theirs to close. A connection is
    /// handed to calls only while its holder waits inside the client's `withConnection`, and
    /// is withdrawn before the holder returns it: when it has closed, or when the store goes
    /// (and with it every caller).
    private final class Holdings: Sendable {
        private struct State {
            var open: [PostgresConnection] = []
            var turn = 0
            var started = false
            var stopped = false
            /// The holders, each waiting until its connection closes or the store goes.
            var holders: [PostgresConnection.ID: CheckedContinuation<Void, Never>] = [:]
        }

        private let state = Mutex(State())

        var isStopped: Bool { state.withLock { $0.stopped } }

        var count: Int { state.withLock { $0.open.count } }

        /// The next open connection, if any, and whether the holders must be started.
        func next() -> (PostgresConnection?, start: Bool) {
            state.withLock { state in
                defer { state.started = true }
                let start = !state.started
                for _ in state.open.indices {
                    state.turn = (state.turn + 1) % state.open.count
                    let connection = state.open[state.turn]
                    if !connection.isClosed { return (connection, start) }
                }
                return (nil, start)
            }
        }

        /// Offers `connection` to calls until it closes or the store goes.
        func hold(_ connection: PostgresConnection) async {
            let id = connection.id
            await withCheckedContinuation { (holder: CheckedContinuation<Void, Never>) in
                let held = state.withLock { state in
                    guard !state.stopped else { return false }
                    state.open.append(connection)
                    state.holders[id] = holder
                    return true
                }
                guard held else { return holder.resume() }
                connection.closeFuture.whenComplete { [self] _ in release(id) }
            }
        }

        /// Withdraws the connection `id` from calls and lets its holder return it.
        private func release(_ id: PostgresConnection.ID) {
            let holder = state.withLock { state in
                state.open.removeAll { $0.id == id }
                return state.holders.removeValue(forKey: id)
            }
            holder?.resume()
        }

        /// Withdraws every connection and lets the holders return them and end.
        func stop() {
            let holders = state.withLock { state in
                state.stopped = true
                state.open = []
                defer { state.holders = [:] }
                return Array(state.holders.values)
            }
            for holder in holders { holder.resume() }
        }
    }
}
#endif
