// Test helper for SQLiteSessionStoreTests: inserts sessions into the SQLite file named
// by its argument, printing each storage key once its insert has returned, until killed.
import Foundation
import Logging
import SessionKit
import SessionKitSQLite

guard CommandLine.arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: SessionKitSQLiteCrashWriter DATABASE-PATH\n".utf8))
    exit(2)
}
let store = try await SQLiteSessionStore.open(
    configuration: .init(path: CommandLine.arguments[1]),
    logger: Logger(label: "crash-writer")
)
var index = 0
while true {
    let now = Date()
    let session = StoredSession(
        key: SessionToken.generate().storageKey,
        values: ["index": SessionValue(index), "cart": SessionValue(Array(repeating: "item", count: index % 20))],
        createdAt: now,
        lastSeenAt: now,
        idleDeadline: now + 3600,
        absoluteDeadline: now + 7200
    )
    try await store.insert(session, now: Date())
    FileHandle.standardOutput.write(Data("\(session.key.hex)\n".utf8))
    index += 1
}
