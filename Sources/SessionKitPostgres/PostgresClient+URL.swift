#if PostgreSQL
import Foundation
public import PostgresNIO
import SessionKit

extension PostgresClient.Configuration {
    /// A configuration from `postgres://USER:PASSWORD@HOST:PORT/DATABASE`. TLS is used when
    /// the server offers it unless `?sslmode=disable`; `?sslmode=require` insists on it.
    /// Throws a `SessionConfigurationError` naming `setting` for anything else.
    public init(sessionKitURL url: String, setting: String = "--store") throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme),
            let host = components.host, !host.isEmpty, let user = components.user, !user.isEmpty
        else {
            throw SessionConfigurationError(setting: setting, message: "'\(url)' is not postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch mode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require": tls = .require(.makeClientConfiguration())
        default: throw SessionConfigurationError(setting: setting, message: "sslmode must be disable, prefer or require, not '\(mode)'")
        }
        self.init(
            host: host,
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database.isEmpty ? nil : database,
            tls: tls
        )
    }
}
#endif
