// The database work of a session read and write through postgres-nio alone, with no session
// library: the baseline the PostgreSQL store's cost is measured against, in process
// (`bench-store postgres-client`) and over HTTP (`bench-server postgres-alone`).
// A row is a session as far as the database goes: the same ~200-byte jsonb, timestamps and
// version. A read is one prepared SELECT by primary key; a write one prepared UPDATE that
// merges the changed value into the jsonb, as the store's does. Nothing is decoded past
// what postgres-nio hands back: what the store adds over these is SessionKit's.
import Foundation
public import Logging
public import NIOCore
public import PostgresNIO

/// Rows of `bench_alone` through one running `PostgresClient`.
public struct PostgresAlone: Sendable {
    private let client: PostgresClient
    private let logger: Logger
    /// The jsonb every new row holds: the shop's cart and a counter.
    private let data: String

    /// Runs `body` with a client for `configuration` running and a fresh `bench_alone` table
    /// (any earlier one is dropped), its rows holding `cart` and a counter.
    public static func run<Cart: Encodable>(
        _ configuration: PostgresClient.Configuration, cart: Cart, logger: Logger, _ body: (PostgresAlone) async throws -> Void
    ) async throws {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await client.query("DROP TABLE IF EXISTS bench_alone", logger: logger)
            try await client.query(
                """
                CREATE TABLE bench_alone (key bytea PRIMARY KEY, data jsonb NOT NULL, last_seen_at timestamptz NOT NULL,
                    idle_deadline timestamptz NOT NULL, version bigint NOT NULL)
                """, logger: logger)
            let data = String(decoding: try JSONEncoder().encode(Row(cart: cart, counter: 0)), as: UTF8.self)
            try await body(PostgresAlone(client: client, logger: logger, data: data))
        }
    }

    /// Inserts a row under `key`, live for an hour.
    public func insert(_ key: ByteBuffer) async throws {
        try await first(Insert(key: key, data: data, now: Date()))
    }

    /// A live row's version, or `nil` when there is none.
    public func select(_ key: ByteBuffer) async throws -> Int64? {
        try await first(Select(key: key, now: Date()))?.3
    }

    /// A live row's data (a JSON object, as text) and version, or `nil` when there is none.
    public func selectData(_ key: ByteBuffer) async throws -> (data: String, version: Int64)? {
        try await first(Select(key: key, now: Date())).map { ($0.0, $0.3) }
    }

    /// Sets the counter of a live row and extends it by an hour; its new version, or `nil`
    /// when there is no live row.
    public func update(_ key: ByteBuffer, counter: Int64) async throws -> Int64? {
        try await first(Update(key: key, set: "{\"counter\": \(counter)}", now: Date()))
    }

    /// A row key as a cookie carries it: 64 lowercase hex digits.
    public static func hex(_ key: ByteBuffer) -> String {
        key.readableBytesView.map { String(format: "%02x", $0) }.joined()
    }

    /// The row key a cookie names, or `nil` unless it is 64 hex digits.
    public static func key(hex: String) -> ByteBuffer? {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return ByteBuffer(bytes: bytes)
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// Runs a statement and returns its first row, if any (reading every row, as the store does).
    @discardableResult
    private func first<Statement: PostgresPreparedStatement>(_ statement: Statement) async throws -> Statement.Row? {
        var first: Statement.Row?
        for try await row in try await client.execute(statement, logger: logger) where first == nil { first = row }
        return first
    }

    private struct Row<Cart: Encodable>: Encodable {
        var cart: Cart
        var counter: Int
    }

    private struct Insert: PostgresPreparedStatement {
        static let name = "bench_alone_insert"
        static let sql = "INSERT INTO bench_alone (key, data, last_seen_at, idle_deadline, version) VALUES ($1, $2::jsonb, $3, $4, 1)"
        typealias Row = Void
        var key: ByteBuffer
        var data: String
        var now: Date

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(key)
            bindings.append(data)
            bindings.append(now)
            bindings.append(now + 3_600)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }

    private struct Select: PostgresPreparedStatement {
        static let name = "bench_alone_select"
        static let sql = "SELECT data::text, last_seen_at, idle_deadline, version FROM bench_alone WHERE key = $1 AND idle_deadline > $2"
        typealias Row = (String, Date, Date, Int64)
        var key: ByteBuffer
        var now: Date

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(key)
            bindings.append(now)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// Merges `set` (a jsonb object) into a live row's data and extends it.
    private struct Update: PostgresPreparedStatement {
        static let name = "bench_alone_update"
        static let sql = """
            UPDATE bench_alone SET data = data || $2::jsonb, last_seen_at = $3, idle_deadline = $4, version = version + 1
            WHERE key = $1 AND idle_deadline > $3 RETURNING version
            """
        typealias Row = Int64
        var key: ByteBuffer
        var set: String
        var now: Date

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(key)
            bindings.append(set)
            bindings.append(now)
            bindings.append(now + 3_600)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }
}
