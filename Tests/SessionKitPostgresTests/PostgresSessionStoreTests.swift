import Foundation
import Logging
import PostgresNIO
import SessionKit
import SessionKitPostgres
import SessionKitTestSupport
import SessionKitTesting
import Testing

/// Runs `body` with a store on the test server (or `url`), its client running meanwhile.
/// With `schema`, the store works in that schema of its own (via `search_path`); with
/// `migrated: false`, `body` gets it before its first migration.
func withPostgresStore<Result: Sendable>(
    url: String? = nil,
    schema: String? = nil,
    migrated: Bool = true,
    maximumConnections: Int? = nil,
    configuration storeConfiguration: PostgresSessionStore.Configuration = PostgresSessionStore.Configuration(),
    _ body: @escaping @Sendable (PostgresSessionStore, PostgresClient) async throws -> Result
) async throws -> Result {
    var configuration = try PostgresClient.Configuration(sessionKitURL: try url ?? TestServices.value("SESSIONKIT_POSTGRES_URL"))
    if let schema { configuration.options.additionalStartupParameters = [("search_path", schema)] }
    if let maximumConnections { configuration.options.maximumConnections = maximumConnections }
    let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "postgres"))
    return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        if let schema { try await client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)")) }
        let store = PostgresSessionStore(client: client, configuration: storeConfiguration, logger: Logger(label: "store"))
        if migrated { try await store.migrate() }
        return try await body(store, client)
    }
}

@Suite(.enabled(if: TestServices.enabled("SESSIONKIT_POSTGRES_URL"), "needs SESSIONKIT_POSTGRES_URL (Scripts/test sets it)"))
struct PostgresSessionStoreTests {
    @Test(arguments: SessionStoreConformance.Check.allCases)
    func conformance(_ check: SessionStoreConformance.Check) async throws {
        try await withPostgresStore { store, _ in try await SessionStoreConformance.run(check, on: store) }
    }

    @Test(arguments: SessionStoreConformance.DeviceBindingCheck.allCases)
    func deviceBindingConformance(_ check: SessionStoreConformance.DeviceBindingCheck) async throws {
        try await withPostgresStore { store, _ in try await SessionStoreConformance.run(check, on: store) }
    }

    @Test func aNegativeCountOfHeldConnectionsIsRefusedByName() async throws {
        var configuration = PostgresSessionStore.Configuration()
        configuration.heldConnections = -1
        _ = try await withPostgresStore(migrated: false, configuration: configuration) { store, _ in
            await #expect { try await store.migrate() } throws: { error in
                (error as? SessionConfigurationError)?.setting == "postgres.heldConnections"
            }
        }
    }

    /// A schema of version 2 (before device bindings) gains the column on migrating; its
    /// sessions load unbound and can then be bound.
    @Test func aVersionTwoSchemaGainsDeviceBindings() async throws {
        let schema = "sessionkit_v2_\(UInt32.random(in: 0...UInt32.max))"
        let now = Date()
        let session = SessionStoreConformance.sessionBeforeDeviceBindings(now: now)
        try await withPostgresStore(schema: schema) { store, client in
            try await store.insert(session, now: now)
            try await client.query("ALTER TABLE sessionkit_sessions DROP COLUMN device_binding")
            try await client.query("UPDATE sessionkit_meta SET value = 2 WHERE name = 'schema_version'")
        }
        try await withPostgresStore(schema: schema) { store, client in
            try await SessionStoreConformance.checkUpgradeToDeviceBindings(of: session, in: store, now: now)
            try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"))
        }
    }

    @Test(arguments: SessionStoreConformance.UserIndexCheck.allCases)
    func userIndexConformance(_ check: SessionStoreConformance.UserIndexCheck) async throws {
        try await withPostgresStore { store, _ in try await SessionStoreConformance.run(check, on: store) }
    }

    @Test(arguments: SessionStoreConformance.AdministrationCheck.allCases)
    func administrationConformance(_ check: SessionStoreConformance.AdministrationCheck) async throws {
        try await withPostgresStore { store, _ in try await SessionStoreConformance.run(check, on: store) }
    }

    @Test(arguments: SessionStoreConformance.RevocationCheck.allCases)
    func revocationConformance(_ check: SessionStoreConformance.RevocationCheck) async throws {
        try await withPostgresStore { store, _ in try await SessionStoreConformance.run(check, on: store) }
    }

    @Test func migrateIsSafeToRunConcurrentlyAndTwice() async throws {
        let schema = "migrate_\(UUID().uuidString.prefix(8).lowercased())"
        try await withPostgresStore(schema: schema, migrated: false) { store, _ in
            // Four at once on an empty schema: they queue on the lock, and all succeed.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            try await store.migrate()
        }
    }

    @Test func purgeFromTwoInstancesDeletesEachExpiredRowOnce() async throws {
        let schema = "purge_\(UUID().uuidString.prefix(8).lowercased())"
        let expired = (0..<1200).map { _ in SessionToken.generate().storageKey }
        let live = SessionToken.generate().storageKey
        let past = Date() - 3600
        try await withPostgresStore(schema: schema) { store, _ in
            for key in expired {
                try await store.insert(
                    StoredSession(key: key, createdAt: past, lastSeenAt: past, idleDeadline: past + 60, absoluteDeadline: past + 120),
                    now: Date()
                )
            }
            let now = Date()
            try await store.insert(
                StoredSession(key: live, createdAt: now, lastSeenAt: now, idleDeadline: now + 60, absoluteDeadline: now + 60), now: Date())
        }
        // Two store instances on two clients purge at the same time.
        async let first = withPostgresStore(schema: schema) { store, _ in try await store.purgeExpired(now: Date()).map(\.key) }
        async let second = withPostgresStore(schema: schema) { store, _ in try await store.purgeExpired(now: Date()).map(\.key) }
        let (one, two) = try await (first, second)
        #expect(Set(one).isDisjoint(with: two))
        #expect(Set(one).union(two) == Set(expired))
        #expect(one.count + two.count == expired.count)
        let (liveLoads, purgedAgain) = try await withPostgresStore(schema: schema) { store, _ in
            (try await store.load(live, now: Date()) != nil, try await store.purgeExpired(now: Date()).count)
        }
        #expect(liveLoads)
        #expect(purgedAgain == 0)
    }

    @Test func urlsAreParsedAndBadOnesNameTheSetting() throws {
        let configuration = try PostgresClient.Configuration(
            sessionKitURL: "postgres://app:s%40cret@db.internal:6543/sessions?sslmode=disable")
        #expect(configuration.host == "db.internal")
        #expect(configuration.port == 6543)
        #expect(configuration.username == "app")
        #expect(configuration.password == "s@cret")
        #expect(configuration.database == "sessions")
        #expect { try PostgresClient.Configuration(sessionKitURL: "redis://x") } throws: {
            ($0 as? SessionConfigurationError)?.setting == "--store"
        }
        #expect { try PostgresClient.Configuration(sessionKitURL: "postgres://u@h/db?sslmode=sometimes") } throws: {
            ($0 as? SessionConfigurationError)?.message.contains("sslmode") == true
        }
    }
}
