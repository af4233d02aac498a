import ArgumentParser
import Crypto
import Foundation
import Logging
import Metrics
import SessionKit
import SessionKitStores

#if Hummingbird
import Hummingbird
#endif
#if Prometheus
import Prometheus
#endif
#if DeviceBound
import SessionKitDeviceBound

/// Device-bound sessions, in a build with the DeviceBound trait.
typealias DemoDeviceBound = DeviceBoundSessions
#else
/// Device-bound sessions, absent from a build without the DeviceBound trait.
typealias DemoDeviceBound = Never
#endif

@main
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessionkit-demo",
        abstract: "A small web shop that shows SessionKit's session management in a browser and over a JSON API."
    )

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0 picks a free one).")
    var port = 8080

    @Option(
        help:
            "Where sessions live: memory, sqlite:PATH, postgres://USER:PASSWORD@HOST:PORT/DATABASE, redis://HOST:PORT, redis-cluster://HOST:PORT,HOST:PORT, or sealed (in each browser's cookie, no store)."
    )
    var store = "sqlite:" + StoreSpec.defaultSQLitePath

    @Option(
        help: """
            With --store sealed: a sealing secret of at least 32 bytes (repeatable: the first seals, all open, for key rotation). \
            Without it, a secret is generated once and kept in --secret-file.
            """
    )
    var secret: [String] = []

    @Option(help: "With --store sealed and no --secret: the file holding the generated secret (readable by its owner only).")
    var secretFile = ".sessionkit/sealing-secret"

    @Option(
        help:
            "With --store sealed: the store (any --store form but sealed) that keeps revoked sessions, so logout holds against a replayed cookie."
    )
    var revocations: String?

    @Option(help: "Seconds of inactivity after which a session ends.")
    var idleTimeout = 1800

    @Option(help: "Seconds after which a session ends however active.")
    var absoluteLifetime = 43_200

    @Option(help: "The password of both demo accounts; generated per run when not given.")
    var demoPassword: String?

    @Option(help: "The most sessions one user may hold at once (no limit when not given).")
    var maxSessionsPerUser: Int?

    @Option(help: "At the session limit: evict-oldest signs the least recently active session out, refuse refuses the login.")
    var sessionLimitPolicy = "evict-oldest"

    @Option(help: "A proxy address whose X-Forwarded-For header names the client (repeatable).")
    var trustedProxy: [String] = []

    @Flag(help: "Drop Secure (and the __Host- cookie prefix) for plain HTTP on a host other than localhost. Development only.")
    var insecureCookies = false

    @Flag(
        help: """
            Serve GET /metrics in Prometheus text format: SessionKit's metrics and Hummingbird's request metrics. \
            Needs the demo built with the Prometheus trait (swift run --traits defaults,Prometheus sessionkit-demo --metrics).
            """
    )
    var metrics = false

    @Flag(
        help: """
            Bind signed-in sessions to a key the browser keeps (Device Bound Session Credentials): a copied session cookie \
            stops working off that device. Needs server-side sessions, and the demo built with the DeviceBound trait.
            """
    )
    var deviceBound = false

    @Option(help: "The web framework that serves the shop: hummingbird or vapor (the same pages, API and cookies on either).")
    var framework = Framework.defaultValue

    /// The frameworks the shop runs on, each behind the package trait of the same name.
    enum Framework: String, ExpressibleByArgument, CaseIterable, Sendable {
        case hummingbird, vapor

        static var defaultValue: Framework {
            #if Hummingbird
            .hummingbird
            #else
            .vapor
            #endif
        }

        /// Whether this build has the framework (its trait was on).
        var isBuilt: Bool {
            switch self {
            case .hummingbird:
                #if Hummingbird
                true
                #else
                false
                #endif
            case .vapor:
                #if Vapor
                true
                #else
                false
                #endif
            }
        }
    }

    func validate() throws {
        guard framework.isBuilt else {
            let trait = framework == .vapor ? "Vapor" : "Hummingbird"
            throw ValidationError(
                "--framework \(framework.rawValue) needs the demo built with the \(trait) trait: "
                    + "swift run --traits defaults,\(trait) sessionkit-demo --framework \(framework.rawValue) (or --enable-all-traits)")
        }
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be a positive number of seconds") }
        guard absoluteLifetime > 0 else { throw ValidationError("--absolute-lifetime must be a positive number of seconds") }
        if let demoPassword, demoPassword.isEmpty { throw ValidationError("--demo-password must not be empty") }
        if metrics, Self.metricsExporter == nil {
            throw ValidationError(
                "--metrics needs the demo built with the Prometheus trait: swift run --traits defaults,Prometheus sessionkit-demo --metrics"
            )
        }
        if let maxSessionsPerUser, maxSessionsPerUser < 1 { throw ValidationError("--max-sessions-per-user must be at least 1") }
        guard UserSessionLimit.Policy(rawValue: sessionLimitPolicy) != nil else {
            throw ValidationError("--session-limit-policy must be evict-oldest or refuse")
        }
        if deviceBound {
            guard Self.deviceBoundIsBuilt else {
                throw ValidationError(
                    "--device-bound needs the demo built with the DeviceBound trait: swift run --traits defaults,DeviceBound sessionkit-demo --device-bound"
                )
            }
            if store == Self.sealedStore {
                throw ValidationError(
                    "--device-bound needs server-side sessions (device keys, single-use challenges); --store sealed keeps none")
            }
        }
        if store == Self.sealedStore {
            if maxSessionsPerUser != nil {
                throw ValidationError("--max-sessions-per-user needs server-side sessions; sealed cookies keep no per-user index")
            }
            if let short = secret.first(where: { $0.utf8.count < SessionSealing.minimumSecretLength }) {
                throw ValidationError("--secret must be at least \(SessionSealing.minimumSecretLength) bytes, not \(short.utf8.count)")
            }
        } else if !secret.isEmpty || revocations != nil {
            throw ValidationError("--secret and --revocations go with --store sealed")
        }
        do {
            if store != Self.sealedStore { _ = try StoreSpec(parsing: store) }
            if let revocations { _ = try StoreSpec(parsing: revocations) }
        } catch let error as SessionConfigurationError {
            throw ValidationError(
                "\(error.setting == "--store" && store == Self.sealedStore ? "--revocations" : error.setting): \(error.message)")
        }
    }

    /// Whether this build has device-bound sessions (the DeviceBound trait was on).
    static var deviceBoundIsBuilt: Bool {
        #if DeviceBound
        true
        #else
        false
        #endif
    }

    /// The `--store` value that seals sessions in cookies.
    static let sealedStore = "sealed"

    /// Bootstraps Prometheus as the metrics backend and returns what renders the
    /// `/metrics` page, or `nil` when the demo was built without the Prometheus trait.
    static var metricsExporter: (@Sendable () -> (@Sendable () -> [UInt8]))? {
        #if Prometheus
        return {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            return { registry.emitToBuffer() }
        }
        #else
        return nil
        #endif
    }

    func run() async throws {
        var logger = Logger(label: "sessionkit-demo")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        // Before any manager is made: a manager takes the metrics backend it finds then.
        let metricsPage = metrics ? Self.metricsExporter?() : nil

        var configuration = SessionConfiguration()
        configuration.idleTimeout = .seconds(idleTimeout)
        configuration.absoluteLifetime = .seconds(absoluteLifetime)
        if let maxSessionsPerUser, let policy = UserSessionLimit.Policy(rawValue: sessionLimitPolicy) {
            configuration.maxSessionsPerUser = UserSessionLimit(maxSessions: maxSessionsPerUser, policy: policy)
        }
        if insecureCookies {
            configuration.cookie = .insecureForDevelopment()
            printLine("warning: --insecure-cookies: the session cookie is sent over plain HTTP. Never use this in production.")
        }
        guard store == Self.sealedStore else {
            let spec = try StoreSpec(parsing: store)
            let deviceBound: DemoDeviceBound? = try self.deviceBound ? makeDeviceBound() : nil
            #if DeviceBound
            let deviceGuard: (any SessionDeviceGuard)? = deviceBound
            #else
            let deviceGuard: (any SessionDeviceGuard)? = nil
            #endif
            try await spec.withStore(logger: logger) { store in
                let manager: SessionManager
                do {
                    manager = try SessionManager(store: store, configuration: configuration, logger: logger, deviceGuard: deviceGuard)
                } catch {
                    throw ValidationError("\(error)")
                }
                try await serve(
                    manager, kind: spec.kind, description: spec.description, metricsPage: metricsPage, deviceBound: deviceBound,
                    logger: logger)
            }
            return
        }
        let sealing: SessionSealing
        do {
            sealing = try SessionSealing(keys: try sealingKeys(), purpose: "sessionkit-demo")
        } catch let error as SessionConfigurationError {
            throw ValidationError("\(error)")
        }
        guard let revocations else {
            let manager = try SessionManager(sealing: sealing, configuration: configuration, logger: logger)
            printLine(
                "warning: no --revocations store: logout clears the browser's cookie, but a copy of it keeps working until it expires.")
            try await serve(
                manager, kind: "sealed cookies", description: "sealed cookies (no store; no revocations)", metricsPage: metricsPage,
                logger: logger)
            return
        }
        let spec = try StoreSpec(parsing: revocations)
        try await spec.withStore(logger: logger) { store in
            let manager = try SessionManager(
                sealing: sealing, revocations: SessionRevocations(store: store), configuration: configuration, logger: logger)
            try await serve(
                manager, kind: "sealed cookies", description: "sealed cookies, revocations in \(spec.description)",
                metricsPage: metricsPage, logger: logger)
        }
    }

    /// Device-bound sessions under a secret made for this run: bound cookies from an earlier
    /// run no longer check, and browsers refresh them with their keys.
    private func makeDeviceBound() throws -> DemoDeviceBound {
        #if DeviceBound
        let secret = SecureRandom.bytes(32)
        do {
            let boundCookie =
                insecureCookies ? SessionCookieConfiguration.insecureForDevelopment(name: "bound") : DeviceBoundSessions.defaultBoundCookie
            return try DeviceBoundSessions(binding: try DeviceBinding(secrets: [secret]), boundCookie: boundCookie)
        } catch {
            throw ValidationError("\(error)")
        }
        #else
        throw ValidationError("--device-bound needs the demo built with the DeviceBound trait")
        #endif
    }

    /// Runs the shop on `manager` until the process is stopped; with `metricsPage`, it also
    /// serves `GET /metrics`; with `deviceBound`, its registration and refresh endpoints.
    private func serve(
        _ manager: SessionManager, kind: String, description: String, metricsPage: (@Sendable () -> [UInt8])?,
        deviceBound: DemoDeviceBound? = nil, logger: Logger
    ) async throws {
        let accounts = Accounts(password: demoPassword)
        let host = self.host
        let trustedProxies = trustedProxy.isEmpty ? nil : TrustedProxies(addresses: Set(trustedProxy))
        var shop = Shop(manager: manager, accounts: accounts, storeDescription: kind, trustedProxies: trustedProxies)
        shop.logger = logger
        shop.metricsPage = metricsPage
        #if DeviceBound
        shop.deviceBound = deviceBound
        #endif
        let framework = self.framework
        let banner: @Sendable (Int) -> Void = { port in
            printLine("SessionKit demo shop on http://\(host):\(port) — sessions in \(description) — served by \(framework.rawValue)")
            for (username, password) in accounts.passwords { printLine("\(username) password: \(password)") }
        }
        switch framework {
        case .hummingbird:
            #if Hummingbird
            let app = Application(
                router: shop.router(),
                configuration: .init(address: .hostname(host, port: port), serverName: "sessionkit-demo"),
                services: [SessionPurgeService(manager: manager, logger: logger)],
                onServerRunning: { channel in banner(channel.localAddress?.port ?? 0) },
                logger: logger
            )
            try await app.runService()
            #endif
        case .vapor:
            #if Vapor
            try await VaporShopServer(shop: shop, host: host, port: port, logger: logger, banner: banner).run()
            #endif
        }
    }

    /// The sealing keys: from `--secret`, or from the secret file, made on first use with
    /// 32 random bytes and permissions for its owner only. A key's id is a fingerprint of
    /// its secret, so the same secrets open the same cookies after a restart. The secret
    /// itself is never printed.
    private func sealingKeys() throws -> [SessionSealing.Key] {
        var secrets = secret.map { Array($0.utf8) }
        if secrets.isEmpty {
            secrets = [try SecretFile(path: secretFile).secret()]
        }
        return secrets.map { secret in
            let fingerprint = SHA256.hash(data: Array("sessionkit-demo key id".utf8) + secret)
            let id = fingerprint.prefix(6).map { String(format: "%02x", $0) }.joined()
            return SessionSealing.Key(id: id, secret: secret)
        }
    }
}

/// Writes a line to standard output at once, even when it is a pipe.
func printLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
