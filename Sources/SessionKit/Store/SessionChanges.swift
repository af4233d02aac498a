public import Foundation

/// What one write changes in a stored session.
///
/// Values change per key, so two writes that touch different keys both survive.
/// Metadata fields that are `nil` are left as stored.
public struct SessionChanges: Sendable {
    /// A user signing in on this session.
    public struct Authentication: Sendable {
        /// Who signs in.
        public var userID: String
        /// When they sign in.
        public var authenticatedAt: Date
        /// The client that signed in; replaces the recorded one.
        public var client: SessionClient

        /// A sign-in of `userID` at `authenticatedAt` from `client`.
        public init(userID: String, authenticatedAt: Date, client: SessionClient) {
            self.userID = userID
            self.authenticatedAt = authenticatedAt
            self.client = client
        }
    }

    /// Values to set (`.some(value)`) or remove (`.some(nil)`), by key name.
    public var values: [String: SessionValue?]
    /// The new last-seen time, if it moves.
    public var lastSeenAt: Date?
    /// The new idle deadline, if it moves.
    public var idleDeadline: Date?
    /// The new absolute deadline, if it moves (on sign-in).
    public var absoluteDeadline: Date?
    /// Whether the session is remembered (remember-me), if it changes.
    public var isPersistent: Bool?
    /// A sign-in that the change records, if any.
    public var authentication: Authentication?

    /// Changes as given; `nil` leaves a field as stored.
    public init(
        values: [String: SessionValue?] = [:],
        lastSeenAt: Date? = nil,
        idleDeadline: Date? = nil,
        absoluteDeadline: Date? = nil,
        isPersistent: Bool? = nil,
        authentication: Authentication? = nil
    ) {
        self.values = values
        self.lastSeenAt = lastSeenAt
        self.idleDeadline = idleDeadline
        self.absoluteDeadline = absoluteDeadline
        self.isPersistent = isPersistent
        self.authentication = authentication
    }

    /// Whether applying these changes would change nothing but the version.
    public var isEmpty: Bool {
        values.isEmpty && lastSeenAt == nil && idleDeadline == nil && absoluteDeadline == nil
            && isPersistent == nil && authentication == nil
    }

    /// Sets or removes in `values` what these changes set or remove, per key: what every
    /// store does to a session's values.
    public func applyValues(to values: inout [String: SessionValue]) {
        for (name, change) in self.values {
            if let change { values[name] = change } else { values.removeValue(forKey: name) }
        }
    }

    /// The JSON of every value set and `nil` for every value removed, checked against
    /// `limits`. Stores that persist encoded values call this, so every such store
    /// enforces the same per-value limit with the same error.
    public func encodedValues(within limits: SessionLimits) throws -> [String: Data?] {
        var encoded = [String: Data?]()
        encoded.reserveCapacity(values.count)
        for (name, value) in values {
            guard let value else {
                encoded[name] = .some(nil)
                continue
            }
            let data = try value.encodedJSON()
            guard data.count <= limits.maxValueBytes else {
                throw SessionStoreError(
                    code: .tooLarge,
                    message: "value '\(name)' is \(data.count) bytes encoded; the limit is \(limits.maxValueBytes)"
                )
            }
            encoded[name] = data
        }
        return encoded
    }
}

/// Size limits on what a session holds, measured on the encoded (JSON) form.
///
/// Stores that encode values enforce them and answer ``SessionStoreError/Code/tooLarge``;
/// the memory store, which encodes only the sessions it keeps compact, does not.
public struct SessionLimits: Sendable, Hashable {
    /// The largest encoded value. The default is 64 KiB.
    public var maxValueBytes: Int = 64 * 1024
    /// The largest encoded session, all values together. The default is 256 KiB.
    public var maxSessionBytes: Int = 256 * 1024

    /// The default limits.
    public init() {}

    /// At most `maxValueBytes` per encoded value and `maxSessionBytes` for all of a session's values.
    public init(maxValueBytes: Int, maxSessionBytes: Int) {
        self.maxValueBytes = maxValueBytes
        self.maxSessionBytes = maxSessionBytes
    }
}
