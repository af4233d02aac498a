import ArgumentParser
import Foundation
import Hummingbird
import Logging
import SessionKit
import SessionKitStores

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
            "Where sessions live: memory, sqlite:PATH, postgres://USER:PASSWORD@HOST:PORT/DATABASE, redis://HOST:PORT or redis-cluster://HOST:PORT,HOST:PORT."
    )
    var store = "sqlite:" + StoreSpec.defaultSQLitePath

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

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be a positive number of seconds") }
        guard absoluteLifetime > 0 else { throw ValidationError("--absolute-lifetime must be a positive number of seconds") }
        if let demoPassword, demoPassword.isEmpty { throw ValidationError("--demo-password must not be empty") }
        if let maxSessionsPerUser, maxSessionsPerUser < 1 { throw ValidationError("--max-sessions-per-user must be at least 1") }
        guard UserSessionLimit.Policy(rawValue: sessionLimitPolicy) != nil else {
            throw ValidationError("--session-limit-policy must be evict-oldest or refuse")
        }
        do {
            _ = try StoreSpec(parsing: store)
        } catch let error as SessionConfigurationError {
            throw ValidationError("\(error.setting): \(error.message)")
        }
    }

    func run() async throws {
        var logger = Logger(label: "sessionkit-demo")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info

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
        let spec = try StoreSpec(parsing: store)
        let accounts = Accounts(password: demoPassword)
        let host = self.host
        let port = self.port
        let trustedProxies = trustedProxy.isEmpty ? nil : TrustedProxies(addresses: Set(trustedProxy))
        try await spec.withStore(logger: logger) { store in
            let manager: SessionManager
            do {
                manager = try SessionManager(store: store, configuration: configuration, logger: logger)
            } catch {
                throw ValidationError("\(error)")
            }
            var shop = Shop(manager: manager, accounts: accounts, storeDescription: spec.kind, trustedProxies: trustedProxies)
            shop.logger = logger
            let app = Application(
                router: shop.router(),
                configuration: .init(address: .hostname(host, port: port), serverName: "sessionkit-demo"),
                services: [SessionPurgeService(manager: manager, logger: logger)],
                onServerRunning: { channel in
                    let port = channel.localAddress?.port ?? 0
                    printLine("SessionKit demo shop on http://\(host):\(port) — sessions in \(spec.description)")
                    for (username, password) in accounts.passwords { printLine("\(username) password: \(password)") }
                },
                logger: logger
            )
            try await app.runService()
        }
    }
}

/// Writes a line to standard output at once, even when it is a pipe.
func printLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
