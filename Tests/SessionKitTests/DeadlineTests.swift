import Synchronization
import Testing

@testable import SessionKit

@Suite struct DeadlineTests {
    /// Work that waits, ignoring cancellation as a query that never returns does, until it
    /// is let go.
    final class StuckWork: Sendable {
        private let waiting = Mutex<UnsafeContinuation<Void, Never>?>(nil)

        func run() async -> Int {
            await withUnsafeContinuation { continuation in waiting.withLock { $0 = continuation } }
            return 1
        }

        func letGo() { waiting.withLock { $0.take()?.resume() } }
    }

    /// `call`'s result and how long it took. Should the limit not answer, `work` is let go
    /// after a minute, so that the test fails with the work's own result instead of waiting
    /// for ever. (How soon the limit answers is not asserted: on a loaded machine its ticker
    /// can wait seconds for a thread. That the result is the limit's shows it answered.)
    private func answer(
        of call: @escaping @Sendable () async throws -> Int, stuckOn work: StuckWork
    ) async -> (Result<Int, any Error>, waited: Duration) {
        let started = ContinuousClock.now
        let answer = Task { try await call() }
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(60))
            work.letGo()
        }
        let result = await answer.result
        let waited = ContinuousClock.now - started
        watchdog.cancel()
        work.letGo()
        return (result, waited)
    }

    @Test func workThatNeverAnswersIsAnsweredAtTheLimit() async throws {
        let deadline = Deadline(limit: .milliseconds(100), clock: ContinuousClock())
        let work = StuckWork()
        let (result, waited) = await answer(of: { try await deadline.run { await work.run() } }, stuckOn: work)
        #expect(throws: Deadline.Exceeded.self) { try result.get() }
        // The ticker answers a call after between 1 and 1¼ limits, never before.
        #expect(waited >= .milliseconds(100))
    }

    @Test func workThatAnswersInTimeIsAnsweredWithItsResult() async throws {
        let deadline = Deadline(limit: .seconds(5), clock: ContinuousClock())
        #expect(try await deadline.run { 42 } == 42)
        await #expect(throws: SessionStoreError.self) {
            try await deadline.run { () async throws -> Int in throw SessionStoreError(code: .unavailable, message: "down") }
        }
    }

    /// Work on the caller's own task is interrupted at the limit, and the caller answered
    /// ``Deadline/Exceeded`` even though the work, once let go, returns a value.
    @Test func workOnTheCallersTaskIsInterruptedAtTheLimit() async throws {
        let deadline = Deadline(limit: .milliseconds(100), clock: ContinuousClock())
        let work = StuckWork()
        let interruptions = Mutex(0)
        let interrupt = { @Sendable in
            interruptions.withLock { $0 += 1 }
            work.letGo()
        }
        let (result, waited) = await answer(of: { try await deadline.run(interrupting: interrupt) { await work.run() } }, stuckOn: work)
        #expect(throws: Deadline.Exceeded.self) { try result.get() }
        #expect(interruptions.withLock { $0 } == 1)
        #expect(waited >= .milliseconds(100))
    }

    @Test func workOnTheCallersTaskThatAnswersInTimeIsNotInterrupted() async throws {
        let deadline = Deadline(limit: .milliseconds(100), clock: ContinuousClock())
        let interruptions = Mutex(0)
        #expect(try await deadline.run(interrupting: { interruptions.withLock { $0 += 1 } }) { 42 } == 42)
        await #expect(throws: SessionStoreError.self) {
            try await deadline.run(interrupting: { interruptions.withLock { $0 += 1 } }) { () async throws -> Int in
                throw SessionStoreError(code: .unavailable, message: "down")
            }
        }
        // The ticker has passed the limit twice over with both calls answered.
        try await Task.sleep(for: .milliseconds(300))
        #expect(interruptions.withLock { $0 } == 0)
    }
}
