public import Logging
public import ServiceLifecycle

/// Calls ``SessionManager/purgeExpired(progress:)`` at an interval until graceful shutdown, so
/// expired sessions are removed (and reported as `expired` events). Add it to the
/// application's service group.
public struct SessionPurgeService: Service {
    private let manager: SessionManager
    private let interval: Duration
    private let clock: any Clock<Duration>
    private let logger: Logger

    /// - Parameters:
    ///   - manager: The manager whose store is purged.
    ///   - interval: Time between purges. The default is one minute.
    ///   - clock: Measures the interval.
    ///   - logger: For purge counts (debug) and failures (warning).
    public init(
        manager: SessionManager,
        interval: Duration = .seconds(60),
        clock: any Clock<Duration> = ContinuousClock(),
        logger: Logger
    ) {
        self.manager = manager
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    /// Purges every interval until the service group shuts down; a failed purge is logged
    /// and tried again at the next.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await clock.sleep(for: interval)
                } catch {
                    return
                }
                do {
                    let purged = try await manager.purgeExpired()
                    if purged > 0 { logger.debug("purged expired sessions", metadata: ["sessionkit.purged": "\(purged)"]) }
                } catch {
                    logger.warning("session purge failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
