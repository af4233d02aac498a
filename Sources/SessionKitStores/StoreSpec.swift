package import Logging
package import SessionKit
import SessionKitSQLite

/// Where sessions live, as the demo's and the admin tool's `--store` name it:
/// `memory` or `sqlite:PATH`.
package enum StoreSpec: Equatable, CustomStringConvertible, Sendable {
    case memory
    case sqlite(path: String)

    package static let defaultSQLitePath = ".sessionkit/demo.sqlite"

    /// Parses a `--store` value; the error names the flag and the accepted forms.
    package init(parsing text: String) throws {
        if text == "memory" {
            self = .memory
        } else if text.hasPrefix("sqlite:"), text.count > "sqlite:".count {
            self = .sqlite(path: String(text.dropFirst("sqlite:".count)))
        } else {
            throw SessionConfigurationError(setting: "--store", message: "'\(text)' is not one of: memory, sqlite:PATH")
        }
    }

    package var description: String {
        switch self {
        case .memory: "memory (lost when the process ends)"
        case .sqlite(let path): "the SQLite file \(path)"
        }
    }

    /// An opened store, and what to do with it at shutdown.
    package struct Opened: Sendable {
        package var store: any SessionStore
        package var close: @Sendable () async throws -> Void
    }

    package func open(logger: Logger) async throws -> Opened {
        switch self {
        case .memory:
            return Opened(store: MemorySessionStore(), close: {})
        case .sqlite(let path):
            let store = try await SQLiteSessionStore.open(configuration: .init(path: path), logger: logger)
            return Opened(store: store, close: { try await store.close() })
        }
    }
}
