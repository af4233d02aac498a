import Foundation
import Logging
import SQLiteNIO
import SessionKit
import SessionKitSQLite
import SessionKitTestSupport
import SessionKitTesting
import Testing

/// A fresh database file in its own temporary folder, removed afterwards.
func withTemporaryDatabase<Result>(_ body: (String) async throws -> Result) async throws -> Result {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sessionkit-sqlite-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    return try await body(folder.appendingPathComponent("sessions.sqlite").path)
}

func withStore<Result>(
    at path: String,
    _ configure: (inout SQLiteSessionStore.Configuration) -> Void = { _ in },
    _ body: (SQLiteSessionStore) async throws -> Result
) async throws -> Result {
    var configuration = SQLiteSessionStore.Configuration(path: path)
    configure(&configuration)
    let store = try await SQLiteSessionStore.open(configuration: configuration, logger: Logger(label: "test"))
    do {
        let result = try await body(store)
        try await store.close()
        return result
    } catch {
        try? await store.close()
        throw error
    }
}

@Suite struct SQLiteSessionStoreTests {
    @Test(arguments: SessionStoreConformance.Check.allCases)
    func conformance(_ check: SessionStoreConformance.Check) async throws {
        try await withTemporaryDatabase { path in
            try await withStore(at: path) { store in try await SessionStoreConformance.run(check, on: store) }
        }
    }

    @Test(arguments: SessionStoreConformance.UserIndexCheck.allCases)
    func userIndexConformance(_ check: SessionStoreConformance.UserIndexCheck) async throws {
        try await withTemporaryDatabase { path in
            try await withStore(at: path) { store in try await SessionStoreConformance.run(check, on: store) }
        }
    }

    @Test(arguments: SessionStoreConformance.AdministrationCheck.allCases)
    func administrationConformance(_ check: SessionStoreConformance.AdministrationCheck) async throws {
        try await withTemporaryDatabase { path in
            try await withStore(at: path) { store in try await SessionStoreConformance.run(check, on: store) }
        }
    }

    @Test(arguments: SessionStoreConformance.DeviceBindingCheck.allCases)
    func deviceBindingConformance(_ check: SessionStoreConformance.DeviceBindingCheck) async throws {
        try await withTemporaryDatabase { path in
            try await withStore(at: path) { store in try await SessionStoreConformance.run(check, on: store) }
        }
    }

    /// A file of schema version 2 (before device bindings) gains the column on opening; its
    /// sessions load unbound and can then be bound.
    @Test func aVersionTwoFileGainsDeviceBindings() async throws {
        try await withTemporaryDatabase { path in
            let now = Date()
            let session = SessionStoreConformance.sessionBeforeDeviceBindings(now: now)
            try await withStore(at: path) { store in try await store.insert(session, now: now) }
            let connection = try await SQLiteConnection.open(storage: .file(path: path))
            try await connection.query("ALTER TABLE sessionkit_sessions DROP COLUMN device_binding", [], { _ in })
            try await connection.query("UPDATE sessionkit_meta SET value = 2 WHERE name = 'schema_version'", [], { _ in })
            try await connection.close()
            try await withStore(at: path) { store in
                try await SessionStoreConformance.checkUpgradeToDeviceBindings(of: session, in: store, now: now)
            }
        }
    }

    @Test(arguments: SessionStoreConformance.RevocationCheck.allCases)
    func revocationConformance(_ check: SessionStoreConformance.RevocationCheck) async throws {
        try await withTemporaryDatabase { path in
            try await withStore(at: path) { store in try await SessionStoreConformance.run(check, on: store) }
        }
    }

    @Test func sessionsSurviveReopeningAndMigrateIsIdempotent() async throws {
        try await withTemporaryDatabase { path in
            let clock = ManualWallClock()
            let now = clock.now()
            let session = StoredSession(
                key: SessionToken.generate().storageKey,
                values: ["cart": SessionValue(["tea", "cup"])],
                createdAt: now,
                lastSeenAt: now,
                idleDeadline: now + 60,
                absoluteDeadline: now + 120,
                userID: "alice",
                authenticatedAt: now
            )
            try await withStore(at: path) { store in
                try await store.insert(session, now: Date())
                try await store.migrate()
                try await store.migrate()
            }
            try await withStore(at: path) { store in
                let loaded = try #require(try await store.load(session.key, now: now))
                #expect(try loaded.values["cart"]?.decode(as: [String].self) == ["tea", "cup"])
                #expect(loaded.userID == "alice")
                #expect(try await store.integrityCheck() == ["ok"])
            }
        }
    }

    /// A load or a plain write given a time limit (as the manager gives them) is answered
    /// within it: here another connection holds the write lock, and the store's busy
    /// timeout of ten minutes would outlast the test's time limit. The write, answered at
    /// the limit, still runs in its turn once the lock is released.
    @Test(.timeLimit(.minutes(1))) func aPlainWriteGivenATimeLimitIsAnsweredWithinItWhileALockIsHeld() async throws {
        try await withTemporaryDatabase { path in
            let now = Date()
            let session = StoredSession(
                key: SessionToken.generate().storageKey, values: ["n": SessionValue(1)], createdAt: now, lastSeenAt: now,
                idleDeadline: now + 600, absoluteDeadline: now + 600)
            try await withStore(at: path, { $0.busyTimeout = .seconds(600) }) { store in
                try await store.insert(session, now: now)
                let other = try await SQLiteConnection.open(storage: .file(path: path))
                try await other.query("BEGIN EXCLUSIVE", [], { _ in })
                await #expect {
                    try await store.apply(
                        SessionChanges(values: ["n": SessionValue(2)]), to: session.key, basedOn: nil, ifVersion: nil, now: now,
                        within: .milliseconds(200))
                } throws: { ($0 as? SessionStoreError)?.code == .timedOut }
                // Readers are not held by a writer's lock (WAL): the load answers, unchanged.
                let loaded = try await store.lookUp(session.key, now: now, within: .milliseconds(200)).session
                #expect(loaded?.values["n"].flatMap { try? $0.decode(as: Int.self) } == 1)
                try await other.query("ROLLBACK", [], { _ in })
                try await other.close()
                // The write answered at the limit lands once the lock is free.
                #expect(
                    try await TestServices.poll(within: .seconds(20)) {
                        (try? await store.lookUp(session.key, now: now))?.session?.values["n"].flatMap { try? $0.decode(as: Int.self) } == 2
                    })
            }
        }
    }

    /// Concurrent writes share transactions; a write that fails inside a group (here a
    /// duplicate key) fails alone, and every write acknowledged is there after reopening.
    @Test func groupedWritesFailAloneAndLandWhenAcknowledged() async throws {
        try await withTemporaryDatabase { path in
            let now = Date()
            func record(_ key: SessionStorageKey = SessionToken.generate().storageKey) -> StoredSession {
                StoredSession(
                    key: key, values: ["n": SessionValue(1)], createdAt: now, lastSeenAt: now, idleDeadline: now + 600,
                    absoluteDeadline: now + 600)
            }
            let taken = record()
            let fresh = (0..<120).map { _ in record() }
            let landed = try await withStore(at: path) { store in
                try await store.insert(taken, now: Date())
                return try await withThrowingTaskGroup(of: SessionStorageKey?.self) { group in
                    for (index, session) in fresh.enumerated() {
                        group.addTask {
                            // Every eighth write clashes with the stored key.
                            if index % 8 == 0 {
                                do {
                                    try await store.insert(record(taken.key), now: Date())
                                    Issue.record("a clashing insert succeeded")
                                } catch let error as SessionStoreError {
                                    #expect(error.code == .duplicateKey)
                                }
                                return nil
                            }
                            try await store.insert(session, now: Date())
                            let changed = try await store.apply(
                                SessionChanges(values: ["n": SessionValue(2)]), to: session.key, ifVersion: nil, now: now)
                            guard case .applied = changed else { Issue.record("apply answered \(changed)"); return nil }
                            return session.key
                        }
                    }
                    return try await group.reduce(into: [SessionStorageKey]()) { if let key = $1 { $0.append(key) } }
                }
            }
            #expect(landed.count == 105)
            try await withStore(at: path) { store in
                for key in landed {
                    let value = try await store.load(key, now: now)?.values["n"]?.decode(as: Int.self)
                    #expect(value == 2)
                }
                #expect(try await store.count() == 106)
            }
        }
    }

    /// Each count of changed values is a statement of its own shape; 140 of them pass the
    /// connection's cache of prepared statements, which then starts over.
    @Test func statementsPastThePreparedCacheStillApply() async throws {
        try await withTemporaryDatabase { path in
            _ = try await withStore(at: path) { store in
                let now = Date()
                let key = SessionToken.generate().storageKey
                try await store.insert(
                    StoredSession(
                        key: key, values: [:], createdAt: now, lastSeenAt: now, idleDeadline: now + 600, absoluteDeadline: now + 600),
                    now: Date())
                for count in 1...140 {
                    var values = [String: SessionValue?]()
                    for index in 0..<count { values["v\(index)"] = SessionValue(count) }
                    if count > 1 { values["v\(count - 2)"] = .some(nil) }
                    let result = try await store.apply(SessionChanges(values: values), to: key, ifVersion: nil, now: now)
                    guard case .applied = result else {
                        Issue.record("apply \(count) answered \(result)")
                        return
                    }
                }
                let stored = try #require(try await store.load(key, now: now))
                #expect(stored.values.count == 139)
                #expect(try stored.values["v139"]?.decode(as: Int.self) == 140)
                #expect(stored.values["v138"] == nil)
                #expect(try stored.values["v0"]?.decode(as: Int.self) == 140)
            }
        }
    }

    @Test func storeEnforcesItsSizeLimits() async throws {
        try await withTemporaryDatabase { path in
            try await withStore(at: path, { $0.limits = SessionLimits(maxValueBytes: 100, maxSessionBytes: 250) }) { store in
                let now = Date()
                let key = SessionToken.generate().storageKey
                let small = String(repeating: "x", count: 80)
                try await store.insert(
                    StoredSession(
                        key: key,
                        values: ["a": SessionValue(small)],
                        createdAt: now,
                        lastSeenAt: now,
                        idleDeadline: now + 60,
                        absoluteDeadline: now + 60
                    ), now: Date()
                )
                let tooBigValue = SessionChanges(values: ["b": SessionValue(String(repeating: "y", count: 200))])
                await #expect { try await store.apply(tooBigValue, to: key, ifVersion: nil, now: now) } throws: {
                    ($0 as? SessionStoreError)?.code == .tooLarge
                }
                // Each value fits, the session as a whole would not.
                _ = try await store.apply(SessionChanges(values: ["b": SessionValue(small)]), to: key, ifVersion: nil, now: now)
                let overflow = SessionChanges(values: ["c": SessionValue(small)])
                await #expect { try await store.apply(overflow, to: key, ifVersion: nil, now: now) } throws: {
                    ($0 as? SessionStoreError)?.code == .tooLarge
                }
                let loaded = try #require(try await store.load(key, now: now))
                #expect(loaded.values.keys.sorted() == ["a", "b"])
            }
        }
    }

    @Test func corruptFileFailsWithAClearError() async throws {
        try await withTemporaryDatabase { path in
            try FileManager.default.createDirectory(
                at: URL(fileURLWithPath: path).deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: path))
            await #expect(throws: (any Error).self) {
                try await SQLiteSessionStore.open(configuration: .init(path: path), logger: Logger(label: "test"))
            }
        }
    }

    @Test func killedWriterLosesNoAcknowledgedSession() async throws {
        let writer = try #require(
            BuiltExecutable.url(named: "SessionKitSQLiteCrashWriter"),
            "build the SessionKitSQLiteCrashWriter target first (swift build --build-tests)"
        )
        try await withTemporaryDatabase { path in
            let process = Process()
            process.executableURL = writer
            process.arguments = [path]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            // Read acknowledged keys until a few hundred are in, then kill -9 mid-write.
            var acknowledged = [String]()
            var buffer = Data()
            let handle = output.fileHandleForReading
            while acknowledged.count < 300 {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    acknowledged.append(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
                    buffer.removeSubrange(buffer.startIndex...newline)
                }
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)
            #expect(acknowledged.count >= 300)

            try await withStore(at: path) { store in
                #expect(try await store.integrityCheck() == ["ok"])
                let now = Date()
                var missing = 0
                for hex in acknowledged {
                    let key = try #require(SessionStorageKey(hex: hex))
                    if try await store.load(key, now: now) == nil { missing += 1 }
                }
                #expect(missing == 0)
                #expect(try await store.count() >= acknowledged.count)
            }
        }
    }
}
