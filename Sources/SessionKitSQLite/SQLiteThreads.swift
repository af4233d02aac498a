#if SQLite
import NIOPosix
import SessionKit
import Synchronization

/// What work submitted after ``SQLiteSessionStore/close()`` fails with.
private let storeClosed = SessionStoreError(code: .unavailable, message: "the SQLite store is closed")

/// The writer connection on its own thread.
///
/// Work is synchronous SQL run on that thread, one piece after another, so a caller waits
/// for nothing but its own statements. Single-statement writes that queue up while others
/// run are committed together (group commit): the thread runs them back to back inside one
/// transaction, and each caller is answered after that transaction's `COMMIT`, so many
/// concurrent writers cost one commit. A statement that fails is undone alone (SQLite rolls
/// back the statement, not the transaction) and fails alone; if it took the whole
/// transaction with it (a disk or I/O error), the writes before it in the group fail too.
/// When the commit fails, every write of the group fails.
final class SQLiteWriter: Sendable {
    private let thread: NIOThreadPool
    private let handle: SQLiteHandle
    private let state = Mutex(Queue())
    /// Writes committed per transaction at most.
    private static let maxGroupSize = 256

    private struct Queue {
        var jobs = [Job]()
        var draining = false
    }

    /// Queued work: `run` does it and returns how to answer its caller (once its group has
    /// committed); `abandon` answers the caller when the work cannot be done or kept.
    private struct Job: Sendable {
        typealias Answer = @Sendable () -> Void

        /// Whether this is one statement that may share a transaction with others.
        let groups: Bool
        let run: @Sendable (SQLiteHandle) -> Answer
        let abandon: @Sendable (any Error) -> Void
    }

    init(handle: SQLiteHandle) {
        self.handle = handle
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
    }

    /// Finishes queued work, stops the thread and closes the connection.
    func close() async throws {
        try await thread.shutdownGracefully()
        handle.close()
    }

    /// One statement's work (`body` must run a single data-changing statement), answered
    /// once it is committed.
    func write<Result: Sendable>(_ body: @escaping @Sendable (SQLiteHandle) throws -> Result) async throws -> Result {
        try await enqueue(groups: true, body)
    }

    /// ``write(_:)`` answered within `deadline`'s limit: after it, the caller gets
    /// `Deadline.Exceeded` and the write still runs in its turn (it may or may not land).
    func write<Result: Sendable>(within deadline: Deadline, _ body: @escaping @Sendable (SQLiteHandle) throws -> Result)
        async throws -> Result
    {
        try await deadline.run(reporting: { report in self.enqueue(groups: true, body, report: report) })
    }

    /// `body` on the writer connection outside any group, with nothing else running.
    func alone<Result: Sendable>(_ body: @escaping @Sendable (SQLiteHandle) throws -> Result) async throws -> Result {
        try await enqueue(groups: false, body)
    }

    /// `body` in an `IMMEDIATE` transaction of its own: committed when it returns, rolled
    /// back when it throws.
    func transaction<Result: Sendable>(_ body: @escaping @Sendable (SQLiteHandle) throws -> Result) async throws -> Result {
        try await alone { handle in
            try handle.execute("BEGIN IMMEDIATE")
            do {
                let result = try body(handle)
                try handle.execute("COMMIT")
                return result
            } catch {
                if handle.inTransaction { try? handle.execute("ROLLBACK") }
                throw error
            }
        }
    }

    private func enqueue<Result: Sendable>(
        groups: Bool,
        _ body: @escaping @Sendable (SQLiteHandle) throws -> Result
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            enqueue(groups: groups, body) { continuation.resume(with: $0) }
        }
    }

    /// Queues `body`; `report` gets its outcome once it is committed (or abandoned).
    private func enqueue<Result: Sendable>(
        groups: Bool,
        _ body: @escaping @Sendable (SQLiteHandle) throws -> Result,
        report: @escaping @Sendable (Swift.Result<Result, any Error>) -> Void
    ) {
        let job = Job(groups: groups) { handle in
            let result = Swift.Result { try body(handle) }
            return { report(result) }
        } abandon: { error in
            report(.failure(error))
        }
        let starts = state.withLock { queue -> Bool in
            queue.jobs.append(job)
            guard !queue.draining else { return false }
            queue.draining = true
            return true
        }
        if starts {
            thread.submit { [self] workState in
                guard case .active = workState else { return abandonQueued() }
                drain()
            }
        }
    }

    /// Runs queued work until none is left (on the writer's thread).
    private func drain() {
        while true {
            let jobs = state.withLock { queue -> ArraySlice<Job> in
                let jobs = queue.jobs.prefix(Self.maxGroupSize)
                queue.jobs.removeFirst(jobs.count)
                if jobs.isEmpty { queue.draining = false }
                return jobs
            }
            if jobs.isEmpty { return }
            var rest = jobs
            while let first = rest.first {
                guard first.groups else {
                    first.run(handle)()
                    rest = rest.dropFirst()
                    continue
                }
                let group = rest.prefix { $0.groups }
                commit(group)
                rest = rest.dropFirst(group.count)
            }
        }
    }

    private func commit(_ group: ArraySlice<Job>) {
        // A lone write runs in its own implicit transaction.
        guard group.count > 1 else { return group.first.map { $0.run(handle)() } ?? () }
        do {
            try handle.execute("BEGIN IMMEDIATE")
        } catch {
            for job in group { job.abandon(error) }
            return
        }
        var answers = [Job.Answer]()
        answers.reserveCapacity(group.count)
        for (index, job) in zip(group.indices, group) {
            let answer = job.run(handle)
            guard handle.inTransaction else {
                // This statement's failure rolled back the whole transaction: the writes
                // before it are undone, so they fail; the rest start a new group.
                let undone = SessionStoreError(code: .unavailable, message: "SQLite rolled back the transaction this write was part of")
                for earlier in group[..<index] { earlier.abandon(undone) }
                answer()
                return commit(group[(index + 1)...])
            }
            answers.append(answer)
        }
        do {
            try handle.execute("COMMIT")
        } catch {
            if handle.inTransaction { try? handle.execute("ROLLBACK") }
            for job in group { job.abandon(error) }
            return
        }
        for answer in answers { answer() }
    }

    private func abandonQueued() {
        let jobs = state.withLock { queue in
            defer { queue = Queue() }
            return queue.jobs
        }
        for job in jobs { job.abandon(storeClosed) }
    }
}

/// Reader connections, each used by one of the pool's threads at a time.
final class SQLiteReaders: Sendable {
    private let threads: NIOThreadPool
    /// Connections not in use. There are as many as threads, so a running job always finds one.
    private let idle: Mutex<[SQLiteHandle]>
    private let handles: [SQLiteHandle]

    init(handles: [SQLiteHandle]) {
        self.handles = handles
        idle = Mutex(handles)
        threads = NIOThreadPool(numberOfThreads: handles.count)
        threads.start()
    }

    func close() async throws {
        try await threads.shutdownGracefully()
        for handle in handles { handle.close() }
    }

    func read<Result: Sendable>(_ body: @escaping @Sendable (SQLiteHandle) throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            read(body) { continuation.resume(with: $0) }
        }
    }

    /// ``read(_:)`` answered within `deadline`'s limit (then `Deadline.Exceeded`; the read
    /// still runs in its turn, its result dropped).
    func read<Result: Sendable>(within deadline: Deadline, _ body: @escaping @Sendable (SQLiteHandle) throws -> Result)
        async throws -> Result
    {
        try await deadline.run(reporting: { report in self.read(body, report: report) })
    }

    /// Runs `body` on a reader's thread; `report` gets its outcome.
    private func read<Result: Sendable>(
        _ body: @escaping @Sendable (SQLiteHandle) throws -> Result,
        report: @escaping @Sendable (Swift.Result<Result, any Error>) -> Void
    ) {
        threads.submit { [self] workState in
            guard case .active = workState, let handle = idle.withLock({ $0.popLast() }) else {
                return report(.failure(storeClosed))
            }
            let result = Swift.Result { try body(handle) }
            idle.withLock { $0.append(handle) }
            report(result)
        }
    }
}
#endif
