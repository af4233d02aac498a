#if Vapor
import Logging
public import ServiceLifecycle
public import SessionKit
import Synchronization
public import Vapor

/// Runs what a session store needs in a Vapor application's lifetime: the store's own
/// services (a PostgreSQL client's connection pool), the purge of expired sessions, and
/// the store's opening and closing steps.
///
/// `swift
/// let store = try await SQLiteSessionStore.open(configuration: .init(path: "sessions.sqlite"), logger: app.logger)
/// let manager = try SessionManager(store: store)
/// app.lifecycle.use(SessionKitLifecycle(manager: manager, onShutdown: { try await store.close() }))
/// app.middleware.use(SessionKitMiddleware(manager: manager))
/// `
///
/// With PostgreSQL, the client runs as a service and the schema is migrated once it does:
///
/// `swift
/// let client = PostgresClient(configuration: configuration)
/// let store = PostgresSessionStore(client: client, logger: app.logger)
/// app.lifecycle.use(SessionKitLifecycle(manager: manager, running: [client], onBoot: { try await store.migrate() }))
/// `
///
/// The services start when the application boots and stop (by cancellation) when it shuts
/// down, before `onShutdown` runs. The application must boot asynchronously
/// (`app.execute()` and `app.asyncBoot()` do); a synchronous `app.boot()` is refused with
/// an error that says so, because the store could not be made ready without waiting.
public final class SessionKitLifecycle: LifecycleHandler {
    private let manager: SessionManager
    private let services: [any Service]
    private let purgeInterval: Duration?
    private let onBoot: (@Sendable () async throws -> Void)?
    private let onShutdown: (@Sendable () async throws -> Void)?
    private let running = Mutex<Task<Void, Never>?>(nil)

    /// The lifecycle of a manager's store.
    /// - Parameters:
    ///   - manager: The manager whose expired sessions are purged every `purgeInterval`.
    ///   - services: Services the store needs running, such as its database client.
    ///   - purgeInterval: Time between purges of expired sessions; `nil` purges nothing
    ///     (when another process does). The default is one minute.
    ///   - onBoot: Runs once the services have started, before the application serves a
    ///     request: a schema migration. A failure fails the boot.
    ///   - onShutdown: Runs after the services stopped: closing the store.
    public init(
        manager: SessionManager,
        running services: [any Service] = [],
        purgeInterval: Duration? = .seconds(60),
        onBoot: (@Sendable () async throws -> Void)? = nil,
        onShutdown: (@Sendable () async throws -> Void)? = nil
    ) {
        self.manager = manager
        self.services = services
        self.purgeInterval = purgeInterval
        self.onBoot = onBoot
        self.onShutdown = onShutdown
    }

    /// Refuses a synchronous boot, which could not wait for the store.
    public func didBoot(_ application: Application) throws {
        throw SessionConfigurationError(
            setting: "SessionKitLifecycle",
            message: "boot the application asynchronously (app.execute() or try await app.asyncBoot())"
        )
    }

    /// Starts the services, then runs `onBoot`.
    public func didBootAsync(_ application: Application) async throws {
        let logger = application.logger
        var services = self.services
        if let purgeInterval {
            services.append(SessionPurgeService(manager: manager, interval: purgeInterval, logger: logger))
        }
        let group = ServiceGroup(services: services, logger: logger)
        running.withLock { running in
            running = Task {
                do {
                    try await group.run()
                } catch {
                    logger.error("session services stopped", metadata: ["error": "\(error)"])
                }
            }
        }
        try await onBoot?()
    }

    /// Stops the services, then runs `onShutdown`; a failure is logged.
    public func shutdownAsync(_ application: Application) async {
        let task = running.withLock { running in
            defer { running = nil }
            return running
        }
        task?.cancel()
        await task?.value
        do {
            try await onShutdown?()
        } catch {
            application.logger.warning("closing the session store failed", metadata: ["error": "\(error)"])
        }
    }
}
#endif
