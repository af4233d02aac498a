// The database work of a session read and write through postgres-nio alone, with no session
// library: the baseline the PostgreSQL store's cost is measured against, in process
// (`bench-store postgres-client`) and over HTTP (`bench-server postgres-alone`).
// A row is a session as far as the database goes: the same ~200-byte jsonb, timestamps and
// version. A read is one prepared SELECT by primary key; a write one prepared UPDATE that
// merges the changed value into the jsonb, as the store's does. Nothing is decoded past
// what postgres-nio hands back: what the store adds over these is SessionKit's.
public import Foundation
public import Logging
public import NIOCore
public import PostgresNIO

public enum PostgresAlone {
    /// A fresh table (any earlier one is dropped).
    public static func createTable(_ client: PostgresClient, logger: Logger) async throws {
        try await client.query("DROP TABLE IF EXISTS bench_alone", logger: logger)
        try await client.query(
            """
            CREATE TABLE bench_alone (key bytea PRIMARY KEY, data jsonb NOT NULL, last_seen_at timestamptz NOT NULL,
                idle_deadline timestamptz NOT NULL, version bigint NOT NULL)
            """, logger: logger)
    }

    public struct Insert: PostgresPreparedStatement {
        public static let name = "bench_alone_insert"
        public static let sql = "INSERT INTO bench_alone (key, data, last_seen_at, idle_deadline, version) VALUES ($1, $2::jsonb, $3, $4, 1)"
        public typealias Row = Void
        public var key: ByteBuffer
        public var data: String
        public var now: Date
        public init(key: ByteBuffer, data: String, now: Date) {
            self.key = key
            self.data = data
            self.now = now
        }
        public func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(key)
            bindings.append(data)
            bindings.append(now)
            bindings.append(now + 3_600)
            return bindings
        }
        public func decodeRow(_ row: PostgresRow) throws {}
    }

    /// A live row's data and version.
    public struct Select: PostgresPreparedStatement {
        public static let name = "bench_alone_select"
        public static let sql = "SELECT data::text, last_seen_at, idle_deadline, version FROM bench_alone WHERE key = $1 AND idle_deadline > $2"
        public typealias Row = (String, Date, Date, Int64)
        public var key: ByteBuffer
        public var now: Date
        public init(key: ByteBuffer, now: Date) {
            self.key = key
            self.now = now
        }
        public func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(key)
            bindings.append(now)
            return bindings
        }
        public func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// Merges `set` (a jsonb object) into a live row's data and extends it; the new version.
    public struct Update: PostgresPreparedStatement {
        public static let name = "bench_alone_update"
        public static let sql = """
            UPDATE bench_alone SET data = data || $2::jsonb, last_seen_at = $3, idle_deadline = $4, version = version + 1
            WHERE key = $1 AND idle_deadline > $3 RETURNING version
            """
        public typealias Row = Int64
        public var key: ByteBuffer
        public var set: String
        public var now: Date
        public init(key: ByteBuffer, set: String, now: Date) {
            self.key = key
            self.set = set
            self.now = now
        }
        public func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(key)
            bindings.append(set)
            bindings.append(now)
            bindings.append(now + 3_600)
            return bindings
        }
        public func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// Runs a statement and returns its first row, if any (reading every row, as the store does).
    @discardableResult
    public static func first<Statement: PostgresPreparedStatement>(
        _ statement: Statement, on client: PostgresClient, logger: Logger
    ) async throws -> Statement.Row? {
        var first: Statement.Row?
        for try await row in try await client.execute(statement, logger: logger) where first == nil { first = row }
        return first
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

    /// A session's worth of jsonb: the shop's cart and a counter.
    public static func data<Cart: Encodable>(cart: Cart) throws -> String {
        String(decoding: try JSONEncoder().encode(Row(cart: cart, counter: 0)), as: UTF8.self)
    }

    private struct Row<Cart: Encodable>: Encodable {
        var cart: Cart
        var counter: Int
    }
}
