import ArgumentParser
import Foundation
import Logging
import SessionKit
import SessionKitStores

/// `sessionkit`: inspect and manage stored sessions.
///
/// Exit codes: 0 done; 1 no such session (show, revoke); 64 a usage error (an unknown
/// flag or a bad `--store`); 69 the store could not be opened or failed.
@main
struct SessionKitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessionkit",
        abstract: "Inspect and manage SessionKit sessions.",
        discussion: """
            Sessions are named by handle: the first half of their storage key, never a usable token.
            Exit codes: 0 done, 1 no such session, 64 usage error, 69 store unavailable or failing.
            """,
        subcommands: [List.self, Show.self, Revoke.self, RevokeUser.self, Purge.self, Stats.self, Migrate.self]
    )
}

struct StoreOptions: ParsableArguments {
    @Option(
        help:
            "Where sessions live: sqlite:PATH, postgres://USER:PASSWORD@HOST:PORT/DATABASE, redis://HOST:PORT or redis-cluster://HOST:PORT,HOST:PORT."
    )
    var store = "sqlite:" + StoreSpec.defaultSQLitePath

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        do {
            _ = try StoreSpec(parsing: store)
        } catch let error as SessionConfigurationError {
            throw ValidationError("\(error.setting): \(error.message)")
        }
    }

    /// Opens the store, runs `body` with a manager on it, and closes it; a store failure
    /// exits with 69.
    func withManager<Result>(_ body: (SessionManager, any SessionStore) async throws -> Result) async throws -> Result {
        let logger = Logger(label: "sessionkit")
        do {
            return try await StoreSpec(parsing: store).withStore(logger: logger) { store in
                try await body(try SessionManager(store: store, logger: logger), store)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("\(store): \(error)")
            throw ExitCode(69)
        }
    }
}

// MARK: Commands

extension SessionKitCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a user's sessions, most recently active first.")
        @OptionGroup var options: StoreOptions
        @Option(help: "The user whose sessions to list.") var user: String

        func run() async throws {
            let sessions = try await options.withManager { manager, _ in try await manager.sessions(ofUser: user) }
            try Output.sessions(sessions, json: options.json)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one session by handle.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The session's handle.") var handle: String

        func run() async throws {
            let session = try await options.withManager { _, store in
                try await administered(store).session(withHandle: handle, now: Date())
            }
            guard let session else {
                printError("no live session has handle \(handle)")
                throw ExitCode(1)
            }
            try Output.sessions([SessionInfo(session)], json: options.json, detailed: true)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End one session by handle.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The session's handle.") var handle: String

        func run() async throws {
            guard try await options.withManager({ manager, _ in try await manager.revoke(handle: handle) }) else {
                printError("no live session has handle \(handle)")
                throw ExitCode(1)
            }
            try Output.result(["revoked": 1], text: "revoked \(handle)", json: options.json)
        }
    }

    struct RevokeUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-user",
            abstract: "End every session of a user (account disabled, password changed)."
        )
        @OptionGroup var options: StoreOptions
        @Argument(help: "The user.") var user: String
        @Option(help: "Keep this session (by handle).") var except: String?

        func run() async throws {
            let count = try await options.withManager { manager, _ in try await manager.revokeAll(ofUser: user, except: except) }
            try Output.result(["revoked": count], text: "revoked \(count) session\(count == 1 ? "" : "s") of \(user)", json: options.json)
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete expired sessions now, reporting progress on large stores.")
        @OptionGroup var options: StoreOptions

        func run() async throws {
            let json = options.json
            let count = try await options.withManager { manager, _ in
                try await manager.purgeExpired { total in
                    if total > 0, !json { printError("purged \(total)…") }
                }
            }
            try Output.result(["purged": count], text: "purged \(count) expired session\(count == 1 ? "" : "s")", json: options.json)
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count sessions: total, by user, oldest, expiring soon.")
        @OptionGroup var options: StoreOptions
        @Option(help: "What counts as expiring soon, in seconds.") var expiringWithin = 300

        func run() async throws {
            let statistics = try await options.withManager { _, store in
                try await administered(store).statistics(now: Date(), expiringWithin: TimeInterval(expiringWithin))
            }
            try Output.statistics(statistics, window: expiringWithin, json: options.json)
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create or upgrade the store's schema (opening the store migrates it).")
        @OptionGroup var options: StoreOptions

        func run() async throws {
            try await options.withManager { _, store in try await administered(store).migrate() }
            try Output.result(["migrated": 1], text: "schema is up to date", json: options.json)
        }
    }
}

/// The store as administrators reach it; every store `--store` opens answers them.
func administered(_ store: any SessionStore) throws -> any AdministeredSessionStore {
    guard let administered = store as? any AdministeredSessionStore else {
        printError("this store does not answer administrators")
        throw ExitCode(69)
    }
    return administered
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data(("sessionkit: " + line + "\n").utf8))
}
