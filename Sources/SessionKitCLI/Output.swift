import Foundation
import SessionKit

/// Tables for people, JSON for scripts.
enum Output {
    private struct SessionJSON: Encodable {
        var handle: String
        var user: String?
        var device: String
        var ip: String?
        var userAgent: String?
        var createdAt: Date
        var lastSeenAt: Date
        var expiresAt: Date
        var remembered: Bool
        /// Since when the session is bound to a key its device holds (DBSC); absent when it is not.
        var deviceBoundSince: Date?
    }

    private struct StatisticsJSON: Encodable {
        var total: Int
        var byUser: [String: Int]
        var oldestCreatedAt: Date?
        var expiringSoon: Int
        var expiringWithinSeconds: Int
    }

    static func sessions(_ sessions: [SessionInfo], json: Bool, detailed: Bool = false) throws {
        if json {
            try printJSON(
                sessions.map {
                    SessionJSON(
                        handle: $0.handle, user: $0.userID, device: $0.device, ip: $0.client.ipAddress, userAgent: $0.client.userAgent,
                        createdAt: $0.createdAt, lastSeenAt: $0.lastSeenAt, expiresAt: $0.expiresAt, remembered: $0.isPersistent,
                        deviceBoundSince: $0.deviceBoundSince
                    )
                }
            )
            return
        }
        if detailed, let session = sessions.first {
            let rows: [(String, String)] = [
                ("handle", session.handle), ("user", session.userID ?? "-"), ("device", session.device),
                ("ip", session.client.ipAddress ?? "-"), ("user agent", session.client.userAgent ?? "-"),
                ("created", time(session.createdAt)), ("last seen", time(session.lastSeenAt)),
                ("idle deadline", time(session.idleDeadline)), ("absolute deadline", time(session.absoluteDeadline)),
                ("remembered", session.isPersistent ? "yes" : "no"),
                ("device bound", session.deviceBoundSince.map { "since " + time($0) } ?? "no"),
            ]
            for (name, value) in rows { print(name.padding(toLength: 18, withPad: " ", startingAt: 0) + value) }
            return
        }
        table(
            ["HANDLE", "USER", "DEVICE", "IP", "CREATED", "LAST SEEN", "EXPIRES", "BOUND"],
            sessions.map {
                [
                    $0.handle, $0.userID ?? "-", $0.device, $0.client.ipAddress ?? "-", time($0.createdAt), time($0.lastSeenAt),
                    time($0.expiresAt), $0.deviceBoundSince == nil ? "-" : "yes",
                ]
            }
        )
    }

    static func statistics(_ statistics: SessionStatistics, window: Int, json: Bool) throws {
        if json {
            try printJSON(
                StatisticsJSON(
                    total: statistics.total, byUser: statistics.byUser, oldestCreatedAt: statistics.oldestCreatedAt,
                    expiringSoon: statistics.expiringSoon, expiringWithinSeconds: window
                )
            )
            return
        }
        print("sessions        \(statistics.total)")
        print("oldest created  \(statistics.oldestCreatedAt.map(time) ?? "-")")
        print("expiring in \(window)s  \(statistics.expiringSoon)")
        table(["USER", "SESSIONS"], statistics.byUser.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { [$0.key, "\($0.value)"] })
    }

    static func result(_ counts: [String: Int], text: String, json: Bool) throws {
        if json { try printJSON(counts) } else { print(text) }
    }

    private static func table(_ header: [String], _ rows: [[String]]) {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for row in [header] + rows {
            print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
    }

    private static func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    private static func time(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day().time(includingFractionalSeconds: false))
    }
}
