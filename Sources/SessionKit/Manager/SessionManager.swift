import Foundation
public import Logging

/// The policy between the web framework and the store: it hands each request a lazy
/// ``RequestSession`` and commits it after the handler.
///
/// Adapters call ``session(cookieHeaders:client:logger:)`` before the handler and
/// ``commit(_:)`` after it (also when the handler threw), then apply the
/// ``SessionCommitOutcome`` to the response.
public final class SessionManager: Sendable {
    public let store: any SessionStore
    public let configuration: SessionConfiguration
    let wallClock: any WallClock
    let clock: any Clock<Duration>
    /// The store-call time limit.
    let deadline: Deadline
    let logger: Logger
    let updateLocks = KeyedAsyncLock<SessionStorageKey>()
    /// Session events, for whoever subscribes.
    public let events = SessionEvents()

    /// - Parameters:
    ///   - wallClock: The source of `now` for every deadline. Tests pass a manual one.
    ///   - clock: Measures store timeouts and `update` back-off.
    ///   - logger: For work outside a request (listing and revoking sessions); requests
    ///     log to the logger they are given.
    /// - Throws: ``SessionConfigurationError`` naming a setting that cannot work.
    public init(
        store: any SessionStore,
        configuration: SessionConfiguration = SessionConfiguration(),
        wallClock: any WallClock = SystemWallClock(),
        clock: any Clock<Duration> = ContinuousClock(),
        logger: Logger = Logger(label: "sessionkit")
    ) throws(SessionConfigurationError) {
        try configuration.validate()
        self.store = store
        self.configuration = configuration
        self.wallClock = wallClock
        self.clock = clock
        self.deadline = Deadline(limit: configuration.storeTimeout, clock: clock)
        self.logger = logger
    }

    /// The session of one request, from its `Cookie` header fields. Nothing is loaded
    /// until the handler reads it. A cookie value that is not exactly a well-formed token,
    /// or a request carrying the session cookie more than once, counts as no session
    /// and never reaches the store. `client` is evaluated only if the request creates or
    /// signs in a session.
    public func session(
        cookieHeaders: some Sequence<String>,
        client: @autoclosure @escaping @Sendable () -> SessionClient,
        logger: Logger
    ) -> RequestSession {
        var count = 0
        var token: SessionToken?
        CookieHeader.forEachValue(named: configuration.cookie.name, in: cookieHeaders) { value, bytes in
            count += 1
            if count == 1 { token = SessionToken(utf8: UnsafeBufferPointer(rebasing: bytes[value])) }
        }
        if count > 1 {
            token = nil
            logger.debug("session cookie sent \(count) times; treated as no session")
        } else if count == 1, token == nil {
            logger.debug("session cookie is malformed; treated as no session")
        }
        return RequestSession(manager: self, token: token, client: client, logger: logger)
    }

    /// Writes what the request changed (at most one store write) and says what the
    /// response needs. After this, the session throws on every use.
    public func commit(_ session: RequestSession) async -> SessionCommitOutcome {
        await session.commit()
    }

    // MARK: Sessions of a user

    /// The live sessions of `userID`, most recently active first.
    public func sessions(ofUser userID: String) async throws -> [SessionInfo] {
        let now = now()
        return try await storeCall("sessions", logger: logger) { try await $0.sessions(ofUser: userID, now: now) }
            .map(SessionInfo.init)
    }

    /// Ends the session of `userID` named `handle`. Returns `false`, and ends nothing,
    /// when `userID` has no live session of that name.
    public func revoke(handle: String, ofUser userID: String) async throws -> Bool {
        let now = now()
        let sessions = try await storeCall("sessions", logger: logger) { try await $0.sessions(ofUser: userID, now: now) }
        guard let session = sessions.first(where: { $0.key.handle == handle }) else { return false }
        try await revoke(session.key, userID: userID)
        return true
    }

    /// Ends the session named `handle`, whoever it belongs to (for administrators).
    /// Returns `false` when no live session has that handle.
    public func revoke(handle: String) async throws -> Bool {
        let now = now()
        guard let session = try await storeCall("session", logger: logger, { try await $0.session(withHandle: handle, now: now) })
        else { return false }
        try await revoke(session.key, userID: session.userID)
        return true
    }

    /// Ends every session of `userID` (account disabled, password changed), except the
    /// one named `keptHandle`, and returns how many.
    @discardableResult
    public func revokeAll(ofUser userID: String, except keptHandle: String? = nil) async throws -> Int {
        var kept: SessionStorageKey?
        if let keptHandle {
            let now = now()
            kept = try await storeCall("sessions", logger: logger) { try await $0.sessions(ofUser: userID, now: now) }
                .first { $0.key.handle == keptHandle }?.key
        }
        return try await revokeAll(ofUser: userID, except: kept)
    }

    /// Removes expired sessions from the store, reports each as an `expired` event, and
    /// returns how many. ``SessionPurgeService`` calls it periodically.
    @discardableResult
    public func purgeExpired() async throws -> Int {
        let now = now()
        let purged = try await storeCall("purgeExpired", logger: logger) { try await $0.purgeExpired(now: now) }
        for session in purged { events.emit(.expired, session.key, userID: session.userID, at: now) }
        return purged.count
    }

    func revoke(_ key: SessionStorageKey, userID: String?) async throws {
        try await storeCall("delete", logger: logger) { try await $0.delete(key) }
        events.emit(.revoked, key, userID: userID, at: now())
        logger.debug("session revoked", metadata: ["session": "\(key.shortHash)"])
    }

    func revokeAll(ofUser userID: String, except kept: SessionStorageKey?) async throws -> Int {
        let revoked = try await storeCall("deleteSessions", logger: logger) { try await $0.deleteSessions(ofUser: userID, except: kept) }
        let now = now()
        for key in revoked { events.emit(.revoked, key, userID: userID, at: now) }
        return revoked.count
    }

    // MARK: For RequestSession

    func now() -> Date { wallClock.now() }

    /// One store round trip, within ``SessionConfiguration/storeTimeout``, with every
    /// failure turned into a ``SessionError``.
    func storeCall<Value: Sendable>(
        _ operation: String,
        logger: Logger,
        _ body: @escaping @Sendable (any SessionStore) async throws -> Value
    ) async throws -> Value {
        let store = self.store
        do {
            if store.completesInProcess { return try await body(store) }
            return try await deadline.run { try await body(store) }
        } catch let error as SessionStoreError where error.code == .tooLarge {
            logger.debug("session store refused a value", metadata: ["operation": "\(operation)", "error": "\(error)"])
            throw SessionError(code: .tooLarge, message: error.message)
        } catch let error as SessionStoreError where error.code == .sessionLimitReached {
            logger.debug("sign-in refused at the session limit", metadata: ["operation": "\(operation)"])
            throw SessionError(code: .sessionLimitReached, message: "you are signed in on too many devices; sign out of one first")
        } catch is Deadline.Exceeded {
            logger.error("session store did not answer in time", metadata: ["operation": "\(operation)"])
            throw SessionError(code: .storeUnavailable, message: "the session store did not answer in time")
        } catch {
            logger.error("session store failed", metadata: ["operation": "\(operation)", "error": "\(error)"])
            throw SessionError(code: .storeUnavailable, message: "the session store is unavailable")
        }
    }

    /// A new session's record: created now, with the deadlines of its kind.
    func newRecord(
        key: SessionStorageKey,
        values: [String: SessionValue],
        persistent: Bool,
        client: SessionClient,
        now: Date
    ) -> StoredSession {
        StoredSession(
            key: key,
            values: values,
            createdAt: now,
            lastSeenAt: now,
            idleDeadline: now + configuration.idleTimeout(persistent: persistent),
            absoluteDeadline: now + configuration.absoluteLifetime(persistent: persistent),
            isPersistent: persistent,
            client: client
        )
    }

    /// The changes that record activity now: last seen and the idle deadline.
    func touch(_ changes: inout SessionChanges, persistent: Bool, now: Date) {
        changes.lastSeenAt = now
        changes.idleDeadline = now + configuration.idleTimeout(persistent: persistent)
    }

    /// Whether a request that writes nothing should refresh the idle deadline.
    func touchIsDue(_ session: StoredSession, now: Date) -> Bool {
        now.timeIntervalSince(session.lastSeenAt)
            >= configuration.touchFraction * configuration.idleTimeout(persistent: session.isPersistent)
    }

    /// The cookie that carries `token` for `session`: persistent (with `Max-Age` up to the
    /// absolute deadline) for remember-me, a browser-session cookie otherwise.
    func cookie(for token: SessionToken, of session: StoredSession, now: Date) -> String {
        var maxAge: Int?
        if session.isPersistent {
            let remaining = session.absoluteDeadline.timeIntervalSince(now)
            maxAge = Int(min(remaining, configuration.cookie.maxAgeCap.timeInterval).rounded(.down))
        }
        return CookieHeader.setCookie(token.text, maxAge: maxAge, configuration: configuration.cookie)
    }

    /// Jittered exponential back-off before `update`'s next attempt.
    func backOff(attempt: Int) async throws {
        let ceiling = min(100, 2 << min(attempt, 6))
        try await clock.sleep(for: .milliseconds(Int.random(in: 1...ceiling)))
    }
}
