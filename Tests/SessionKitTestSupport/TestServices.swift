public import Foundation

/// Where the servers tests need are, from the environment `Scripts/test` sets.
///
/// A test that needs a server is enabled when its address is set, or when
/// `SESSIONKIT_REQUIRE_SERVICES=1`, in which case a missing address fails it instead of
/// skipping it.
public enum TestServices {
    public struct Missing: Error, CustomStringConvertible {
        public var variable: String
        public var description: String { "\(variable) is not set; run the tests with Scripts/test, which starts the servers" }
    }

    public static var required: Bool { ProcessInfo.processInfo.environment["SESSIONKIT_REQUIRE_SERVICES"] == "1" }

    /// Whether tests needing `variable` should run (and fail if it is missing).
    public static func enabled(_ variable: String) -> Bool {
        required || ProcessInfo.processInfo.environment[variable] != nil
    }

    /// The value of `variable`, or a ``Missing`` error.
    public static func value(_ variable: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else { throw Missing(variable: variable) }
        return value
    }

    /// Calls `attempt` until it answers `true` or `limit` has passed, pausing `interval`
    /// between calls: for a server that must come back. Returns whether it did.
    public static func poll(
        within limit: Duration,
        every interval: Duration = .milliseconds(100),
        _ attempt: () async throws -> Bool
    ) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await attempt() { return true }
            try await Task.sleep(for: interval)
        }
        return false
    }

    /// The repository's `Scripts` folder, for tests that start their own servers.
    public static func script(_ name: String, file: String = #filePath) -> URL {
        var folder = URL(fileURLWithPath: file)
        while folder.path != "/" {
            folder.deleteLastPathComponent()
            let candidate = folder.appendingPathComponent("Scripts").appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return URL(fileURLWithPath: "Scripts/\(name)")
    }
}
