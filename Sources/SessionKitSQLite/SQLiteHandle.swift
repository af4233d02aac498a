#if SQLite
import Foundation
import SessionKit
// SQLite's C API, from the copy sqlite-nio compiles (its functions carry a `sqlite_nio_`
// prefix). The store calls it directly rather than through `SQLiteConnection.query`, which
// prepares every statement anew and crosses two threads per statement: reusing prepared
// statements and running a whole group of writes in one hop is what lets the store commit
// tens of thousands of writes a second. Package.swift pins sqlite-nio to 1.13.x because this
// module name is not part of its public API.
import VaporCSQLite

/// A value bound to a `?` placeholder.
enum SQLiteValue: Sendable {
    case integer(Int64)
    case real(Double)
    case text(String)
    /// UTF-8 text given as bytes (encoded JSON), bound without making a `String`.
    case utf8(Data)
    case blob([UInt8])
    case null

    static func real(_ date: Date) -> SQLiteValue { .real(date.timeIntervalSince1970) }
    static func optional(_ date: Date?) -> SQLiteValue { date.map { .real($0) } ?? .null }
    static func optional(_ text: String?) -> SQLiteValue { text.map { .text($0) } ?? .null }
}

/// One SQLite connection and its prepared statements, kept for reuse.
///
/// Not safe to share: exactly one thread uses a handle at a time (the writer's thread, or
/// the reader thread that checked it out). That discipline, not a lock, is what makes the
/// `Sendable` mark true.
final class SQLiteHandle: @unchecked Sendable {
    private var raw: OpaquePointer?
    private var statements = [String: OpaquePointer]()
    /// Statements kept prepared. The store's SQL comes in a few dozen shapes; past this
    /// bound (only an unusual mix of value changes gets there) the cache starts over.
    private static let maxStatements = 128

    init(path: String, busyTimeout: Duration) throws {
        var handle: OpaquePointer?
        let status = sqlite_nio_sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard status == SQLITE_OK, let handle else {
            let message = handle.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) }
            sqlite_nio_sqlite3_close_v2(handle)
            throw SQLiteHandle.error(status: status, message: "cannot open \(path): \(message ?? "status \(status)")")
        }
        raw = handle
        sqlite_nio_sqlite3_extended_result_codes(handle, 1)
        let milliseconds = busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000
        sqlite_nio_sqlite3_busy_timeout(handle, Int32(clamping: milliseconds))
    }

    deinit { close() }

    func close() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
        statements.removeAll()
        sqlite_nio_sqlite3_close_v2(raw)
        raw = nil
    }

    /// Whether a transaction is open. A statement that fails with a disk or I/O error rolls
    /// back the whole transaction, not just itself; this tells the two apart.
    var inTransaction: Bool { raw.map { sqlite_nio_sqlite3_get_autocommit($0) == 0 } ?? false }

    /// Rows the last data-changing statement changed.
    var changes: Int { raw.map { Int(sqlite_nio_sqlite3_changes64($0)) } ?? 0 }

    /// Runs SQL without binds or rows (pragmas, `BEGIN`, `COMMIT`, schema), possibly several
    /// statements.
    func execute(_ sql: String) throws {
        let status = sqlite_nio_sqlite3_exec(raw, sql, nil, nil, nil)
        guard status == SQLITE_OK else { throw lastError(status) }
    }

    /// Runs one statement and turns each row into a `Row` with `read`.
    func query<Row>(_ sql: String, _ binds: [SQLiteValue] = [], _ read: (SQLiteColumns) throws -> Row) throws -> [Row] {
        let statement = try prepared(sql)
        defer {
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        try bind(binds, to: statement)
        var rows = [Row]()
        while true {
            let status = sqlite_nio_sqlite3_step(statement)
            switch status {
            case SQLITE_ROW: rows.append(try read(SQLiteColumns(statement: statement)))
            case SQLITE_DONE: return rows
            default: throw lastError(status)
            }
        }
    }

    /// Runs one statement, ignoring any rows.
    func run(_ sql: String, _ binds: [SQLiteValue] = []) throws {
        _ = try query(sql, binds) { _ in () }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        if statements.count >= Self.maxStatements {
            for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
            statements.removeAll()
        }
        var statement: OpaquePointer?
        let status = sqlite_nio_sqlite3_prepare_v3(raw, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else { throw lastError(status) }
        statements[sql] = statement
        return statement
    }

    private func bind(_ values: [SQLiteValue], to statement: OpaquePointer) throws {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .integer(let integer): status = sqlite_nio_sqlite3_bind_int64(statement, index, integer)
            case .real(let real): status = sqlite_nio_sqlite3_bind_double(statement, index, real)
            case .text(let text):
                var text = text
                status = text.withUTF8 { bindText(UnsafeRawBufferPointer($0), at: index, in: statement) }
            case .utf8(let data):
                status = data.withUnsafeBytes { bindText($0, at: index, in: statement) }
            case .blob(let bytes) where bytes.isEmpty:
                status = sqlite_nio_sqlite3_bind_zeroblob(statement, index, 0)
            case .blob(let bytes):
                status = bytes.withUnsafeBytes {
                    sqlite_nio_sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), transient)
                }
            case .null: status = sqlite_nio_sqlite3_bind_null(statement, index)
            }
            guard status == SQLITE_OK else { throw lastError(status) }
        }
    }

    private func bindText(_ utf8: UnsafeRawBufferPointer, at index: Int32, in statement: OpaquePointer) -> Int32 {
        // A null pointer would bind NULL, not empty text.
        guard let start = utf8.baseAddress, !utf8.isEmpty else {
            return sqlite_nio_sqlite3_bind_text(statement, index, "", 0, transient)
        }
        return sqlite_nio_sqlite3_bind_text64(
            statement, index, start.assumingMemoryBound(to: CChar.self), UInt64(utf8.count), transient, UInt8(SQLITE_UTF8))
    }

    private func lastError(_ status: Int32) -> SessionStoreError {
        Self.error(status: status, message: raw.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "status \(status)")
    }

    private static func error(status: Int32, message: String) -> SessionStoreError {
        switch status & 0xFF {
        case SQLITE_CONSTRAINT: SessionStoreError(code: .duplicateKey, message: "a session is already stored under that key")
        case SQLITE_CORRUPT, SQLITE_NOTADB: SessionStoreError(code: .corrupt, message: message)
        default: SessionStoreError(code: .unavailable, message: "SQLite: \(message)")
        }
    }
}

/// The columns of the row a statement stands on, by position (0 first).
struct SQLiteColumns {
    fileprivate let statement: OpaquePointer

    func isNull(_ column: Int32) -> Bool { sqlite_nio_sqlite3_column_type(statement, column) == SQLITE_NULL }

    func integer(_ column: Int32) -> Int64? {
        isNull(column) ? nil : sqlite_nio_sqlite3_column_int64(statement, column)
    }

    func real(_ column: Int32) -> Double? {
        isNull(column) ? nil : sqlite_nio_sqlite3_column_double(statement, column)
    }

    func date(_ column: Int32) -> Date? { real(column).map(Date.init(timeIntervalSince1970:)) }

    func text(_ column: Int32) -> String? {
        withUTF8(column) { String(decoding: $0, as: UTF8.self) }
    }

    /// The column's text as UTF-8 bytes, valid only inside `body`.
    func withUTF8<Result>(_ column: Int32, _ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result? {
        guard !isNull(column) else { return nil }
        let start = sqlite_nio_sqlite3_column_text(statement, column)
        let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
        return try body(UnsafeBufferPointer(start: start, count: count))
    }

    func blob(_ column: Int32) -> [UInt8]? {
        guard !isNull(column) else { return nil }
        let start = sqlite_nio_sqlite3_column_blob(statement, column)
        let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
        guard let start, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: start, count: count))
    }
}

/// SQLite copies a value bound with this destructor before the bind call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
#endif
