public import Logging
public import ServiceLifecycle

/// Calls a store's ``SessionStore/purgeExpired(now:)`` at an interval until graceful
/// shutdown. Add it to the application's service group.
public struct SessionPurgeService: Service {
    private let store: any SessionStore
    private let interval: Duration
    private let clock: any Clock<Duration>
    private let wallClock: any WallClock
    private let logger: Logger

    /// - Parameters:
    ///   - interval: Time between purges. The default is one minute.
    public init(
        store: any SessionStore,
        interval: Duration = .seconds(60),
        clock: any Clock<Duration> = ContinuousClock(),
        wallClock: any WallClock = SystemWallClock(),
        logger: Logger
    ) {
        self.store = store
        self.interval = interval
        self.clock = clock
        self.wallClock = wallClock
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await clock.sleep(for: interval)
                } catch {
                    return
                }
                do {
                    let purged = try await store.purgeExpired(now: wallClock.now())
                    if purged > 0 { logger.debug("purged expired sessions", metadata: ["count": "\(purged)"]) }
                } catch {
                    logger.warning("session purge failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
