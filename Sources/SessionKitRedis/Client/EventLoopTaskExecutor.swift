#if Redis
public import NIOCore

/// Runs tasks on one event loop: give it as a task's executor preference
/// (`withTaskExecutorPreference(_:operation:)`, or a task group's `addTask(executorPreference:)`)
/// and the task's code runs on that loop's thread. A ``RedisClient`` command sent from there
/// takes a connection of that loop, so its write and its reply need no hop between threads
/// (BENCHMARKS.md measures what that saves). Code that blocks the thread would stall every
/// connection of the loop: keep such tasks to non-blocking work.
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The loop the tasks run on.
    public let eventLoop: any EventLoop

    /// An executor for `eventLoop`.
    public init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    /// Runs `job` on the loop.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
#endif
