public import Foundation
import Logging
import Synchronization

/// The session as one request's handler sees it.
///
/// Lazy: nothing is loaded until the first read, and concurrent first reads share one
/// load. ``set(_:_:)``, ``remove(_:)``, ``rotate()``, ``destroy()`` and
/// ``rememberMe(_:)`` are recorded and written once, after the handler, by
/// ``SessionManager/commit(_:)``. ``update(_:_:)`` and ``authenticate(userID:)`` write
/// at once, because the handler needs their outcome. After the commit every use throws
/// ``SessionError/Code/committed``.
///
/// Errors thrown are ``SessionError``s.
public final class RequestSession: Sendable {
    private enum Load {
        case notLoaded
        case loading(waiters: [CheckedContinuation<StoredSession?, any Error>])
        case loaded(StoredSession?)
        case failed(SessionError)
    }

    private struct State {
        /// The token the client holds, or will be sent when `issued`.
        var token: SessionToken?
        var load = Load.notLoaded
        /// Values to set (`.some`) or remove (`.some(nil)`) at commit.
        var pending = [String: SessionValue?]()
        var rememberMe: Bool?
        var rotateRequested = false
        var destroyRequested = false
        /// The token was made by this request and must be sent in `Set-Cookie`.
        var issued = false
        /// A token from the client was looked up.
        var looked = false
        var phase = Phase.open
    }

    private enum Phase {
        case open
        case committed
        /// Made by a request context before any session middleware ran.
        case unattached
    }

    private let manager: SessionManager
    /// Who the client is, worked out only when a session is created or signed in (most
    /// requests never need it).
    private let client: @Sendable () -> SessionClient
    private let logger: Logger
    private let cameWithToken: Bool
    private let state: Mutex<State>

    init(manager: SessionManager, token: SessionToken?, client: @escaping @Sendable () -> SessionClient, logger: Logger) {
        self.manager = manager
        self.client = client
        self.logger = logger
        self.cameWithToken = token != nil
        self.state = Mutex(State(token: token))
    }

    /// A placeholder for request contexts to hold until session middleware replaces it.
    /// Every use throws ``SessionError/Code/notAttached``.
    /// One shared instance: its state never changes, so every context can hold it without
    /// an allocation per request.
    public static func unattached() -> RequestSession { placeholder }

    private static let placeholder: RequestSession = {
        let session = RequestSession(manager: placeholderManager, token: nil, client: { SessionClient() }, logger: placeholderLogger)
        session.state.withLock { $0.phase = .unattached }
        return session
    }()

    private static let placeholderLogger = Logger(label: "sessionkit.unattached")
    // The defaults always validate.
    // swift-format-ignore: NeverUseForceTry
    private static let placeholderManager = try! SessionManager(store: MemorySessionStore())

    // MARK: Values

    /// The value stored under `key`, or `nil` when there is none, or when the stored value
    /// no longer decodes as `Value` (that is logged).
    public func get<Value>(_ key: SessionKey<Value>) async throws -> Value? {
        try await value(named: key.name, as: Value.self)
    }

    /// The value stored under `key`; the same as ``get(_:)``.
    public subscript<Value>(key: SessionKey<Value>) -> Value? {
        get async throws { try await get(key) }
    }

    /// Stores `value` under `key` when the response is committed.
    public func set<Value>(_ key: SessionKey<Value>, _ value: Value) throws {
        try record { $0.pending[key.name] = .some(SessionValue(value)) }
    }

    /// Removes the value under `key` when the response is committed.
    public func remove<Value>(_ key: SessionKey<Value>) throws {
        try record { $0.pending[key.name] = .some(nil) }
    }

    /// Stores a flash value: one that the next ``flash(_:)`` of `key` returns and removes.
    public func setFlash<Value>(_ key: SessionKey<Value>, _ value: Value) throws {
        try record { $0.pending[key.flashName] = .some(SessionValue(value)) }
    }

    /// Returns the flash value of `key` and removes it, so it is shown once.
    public func flash<Value>(_ key: SessionKey<Value>) async throws -> Value? {
        guard let value = try await value(named: key.flashName, as: Value.self) else { return nil }
        try record { $0.pending[key.flashName] = .some(nil) }
        return value
    }

    /// Changes the value under `key` and writes it at once, without losing concurrent
    /// changes: `body` runs on the value as freshly loaded, and the write is a
    /// compare-and-set on the session's version, re-run on fresh data until it lands.
    /// Updates of one session within this process wait for each other; across processes
    /// up to ``SessionConfiguration/maxUpdateAttempts`` attempts are made.
    ///
    /// On a request without a stored session, the session is created with the value.
    /// - Returns: The value as written.
    /// - Throws: ``SessionError/Code/sessionChanged`` when the session is ended or
    ///   replaced meanwhile, ``SessionError/Code/updateConflict`` when attempts run out.
    @discardableResult
    public func update<Value>(_ key: SessionKey<Value>, _ body: (inout Value?) throws -> Void) async throws -> Value? {
        guard let current = try await loadedSession() else {
            var value = try await get(key)
            try body(&value)
            try record { $0.pending[key.name] = .some(value.map { SessionValue($0) }) }
            try await insertNewSession()
            return value
        }
        return try await manager.updateLocks.withLock(current.key) {
            for attempt in 1...manager.configuration.maxUpdateAttempts {
                let now = manager.now()
                guard let fresh = try await manager.storeCall("load", logger: logger, { try await $0.load(current.key, now: now) })
                else { throw SessionError.sessionChanged }
                var value = decode(fresh.values[key.name], named: key.name, as: Value.self)
                try body(&value)
                var changes = SessionChanges(values: [key.name: value.map { SessionValue($0) }])
                manager.touch(&changes, persistent: fresh.isPersistent, now: now)
                let result = try await manager.storeCall("apply", logger: logger) { [changes] in
                    try await $0.apply(changes, to: current.key, ifVersion: fresh.version, now: now)
                }
                switch result {
                case .applied(let written):
                    try record { state in
                        state.load = .loaded(written)
                        state.pending[key.name] = nil
                    }
                    return value
                case .missing:
                    throw SessionError.sessionChanged
                case .conflict:
                    if attempt < manager.configuration.maxUpdateAttempts {
                        try? await manager.backOff(attempt: attempt)
                    }
                }
            }
            logger.warning("session update gave up after repeated conflicts", metadata: ["session": "\(current.key.shortHash)"])
            throw SessionError(code: .updateConflict, message: "the session kept changing; the update was not written")
        }
    }

    // MARK: Lifecycle

    /// Signs `userID` in: moves the session to a new token (the old one is dead at once),
    /// keeps its values, records the sign-in time and client, and indexes the user. The
    /// absolute lifetime starts again from now. Written at once.
    /// - Throws: ``SessionError/Code/sessionChanged`` when the session was ended meanwhile.
    public func authenticate(userID: String) async throws {
        let existing = try await loadedSession()
        let (pending, rememberMe) = try record { ($0.pending, $0.rememberMe) }
        let now = manager.now()
        let persistent = rememberMe ?? existing?.isPersistent ?? false
        var changes = SessionChanges(values: pending, isPersistent: persistent)
        changes.authentication = .init(userID: userID, authenticatedAt: now, client: client())
        changes.absoluteDeadline = now + manager.configuration.absoluteLifetime(persistent: persistent)
        manager.touch(&changes, persistent: persistent, now: now)

        let token = SessionToken.generate()
        let source: SessionSignIn.Source
        if let existing {
            source = .rotate(from: existing.key, applying: changes)
        } else {
            var fresh = manager.newRecord(key: token.storageKey, values: [:], persistent: persistent, client: client(), now: now)
            fresh.apply(changes)
            fresh.version = 1
            source = .insert(fresh)
        }
        let signIn = SessionSignIn(
            source: source,
            newKey: token.storageKey,
            userID: userID,
            limit: manager.configuration.maxSessionsPerUser
        )
        let result = try await manager.storeCall("authenticate", logger: logger) { try await $0.authenticate(signIn, now: now) }
        guard case .authenticated(let signedIn, let evicted) = result else { throw SessionError.sessionChanged }
        manager.events.emit(.authenticated, signedIn.key, userID: userID, at: now)
        for session in evicted { manager.events.emit(.evicted, session.key, userID: session.userID, at: now) }
        try record { state in
            state.token = token
            state.issued = true
            state.load = .loaded(signedIn)
            state.rotateRequested = false
            state.rememberMe = nil
            for name in pending.keys { state.pending[name] = nil }
        }
        logger.debug("session authenticated", metadata: ["session": "\(token.storageKey.shortHash)"])
    }

    /// Moves the session to a new token when the response is committed; the old token
    /// stops working. Use it when privileges change.
    public func rotate() throws {
        try record { $0.rotateRequested = true }
    }

    /// Ends the session when the response is committed: it is deleted from the store and
    /// the cookie is cleared.
    public func destroy() throws {
        try record { $0.destroyRequested = true }
    }

    /// Switches "remember me": the longer limits of
    /// ``SessionConfiguration/rememberMeIdleTimeout`` and
    /// ``SessionConfiguration/rememberMeAbsoluteLifetime``, and a cookie that outlives
    /// the browser, or back to the ordinary ones. Written when the response is committed.
    public func rememberMe(_ enabled: Bool) throws {
        try record { $0.rememberMe = enabled }
    }

    /// The stored session's metadata, or `nil` when nothing is stored for this client.
    public func info() async throws -> SessionInfo? {
        try await loadedSession().map(SessionInfo.init)
    }

    /// The signed-in user, or `nil`.
    public func userID() async throws -> String? {
        try await loadedSession()?.userID
    }

    /// Ends every other session of the signed-in user ("sign out everywhere else") at
    /// once, and returns how many. Does nothing for an anonymous session.
    @discardableResult
    public func revokeOtherSessions() async throws -> Int {
        guard let current = try await loadedSession(), let userID = current.userID else { return 0 }
        return try await manager.revokeAll(ofUser: userID, except: current.key)
    }

    // MARK: Commit

    func commit() async -> SessionCommitOutcome {
        // Commit once: a second commit, or one of a placeholder, writes nothing.
        let snapshot = state.withLock { state -> State? in
            guard state.phase == .open else { return nil }
            defer { state.phase = .committed }
            return state
        }
        guard let snapshot else { return SessionCommitOutcome() }
        var outcome = SessionCommitOutcome(sessionRead: snapshot.looked)
        do {
            try await write(snapshot, into: &outcome)
        } catch let error as SessionError {
            outcome.error = error
            outcome.setCookie = nil
        } catch {
            outcome.error = SessionError(code: .storeUnavailable, message: "\(error)")
            outcome.setCookie = nil
        }
        return outcome
    }

    private func write(_ snapshot: State, into outcome: inout SessionCommitOutcome) async throws {
        let now = manager.now()
        if snapshot.destroyRequested {
            let key = snapshot.token?.storageKey
            if let key {
                // The event names the user; look the session up for it only when someone listens.
                var userID: String? = if case .loaded(let session?) = snapshot.load { session.userID } else { nil }
                if userID == nil, manager.events.hasSubscribers, case .notLoaded = snapshot.load {
                    userID = try? await manager.storeCall("load", logger: logger) { try await $0.load(key, now: now) }?.userID
                }
                try await manager.storeCall("delete", logger: logger) { try await $0.delete(key) }
                logger.debug("session destroyed", metadata: ["session": "\(key.shortHash)"])
                manager.events.emit(.destroyed, key, userID: userID, at: now)
            }
            if cameWithToken || snapshot.issued {
                outcome.setCookie = CookieHeader.expireCookie(configuration: manager.configuration.cookie)
            }
            return
        }

        var changes = SessionChanges(values: snapshot.pending)
        let needsRecord = !changes.values.isEmpty || snapshot.rotateRequested || snapshot.rememberMe != nil
        let existing: StoredSession?
        switch snapshot.load {
        case .loaded(let session): existing = session
        case .failed(let error): if needsRecord { throw error } else { return }
        case .notLoaded, .loading:
            guard needsRecord else { return }
            if let key = snapshot.token?.storageKey {
                // A blind write: look the session up first, so that a token whose session
                // is gone is told apart from one that was ended during this request.
                outcome.sessionRead = true
                existing = try await manager.storeCall("load", logger: logger) { try await $0.load(key, now: now) }
            } else {
                existing = nil
            }
        }

        guard let existing else {
            // Nothing stored for this client: create a session only if something is set.
            let values = snapshot.pending.compactMapValues { $0 }
            guard !values.isEmpty else { return }
            let token = SessionToken.generate()
            let fresh = manager.newRecord(
                key: token.storageKey,
                values: values,
                persistent: snapshot.rememberMe ?? false,
                client: client(),
                now: now
            )
            try await manager.storeCall("insert", logger: logger) { try await $0.insert(fresh) }
            logger.debug("session created", metadata: ["session": "\(token.storageKey.shortHash)"])
            manager.events.emit(.created, fresh.key, userID: nil, at: now)
            outcome.setCookie = manager.cookie(for: token, of: fresh, now: now)
            return
        }

        if let persistent = snapshot.rememberMe {
            changes.isPersistent = persistent
            let start = existing.authenticatedAt ?? existing.createdAt
            changes.absoluteDeadline = start + manager.configuration.absoluteLifetime(persistent: persistent)
        }
        let persistent = changes.isPersistent ?? existing.isPersistent
        var token = snapshot.token
        var written = existing
        if snapshot.rotateRequested {
            manager.touch(&changes, persistent: persistent, now: now)
            let newToken = SessionToken.generate()
            let result = try await manager.storeCall("rotate", logger: logger) { [changes] in
                try await $0.rotate(from: existing.key, to: newToken.storageKey, applying: changes, now: now)
            }
            guard case .applied(let rotated) = result else { throw changedMeanwhile(existing) }
            token = newToken
            written = rotated
            manager.events.emit(.rotated, rotated.key, userID: rotated.userID, at: now)
        } else if !changes.isEmpty {
            manager.touch(&changes, persistent: persistent, now: now)
            let result = try await manager.storeCall("apply", logger: logger) { [changes] in
                try await $0.apply(changes, to: existing.key, ifVersion: nil, now: now)
            }
            guard case .applied(let applied) = result else { throw changedMeanwhile(existing) }
            written = applied
        } else if manager.touchIsDue(existing, now: now) {
            manager.touch(&changes, persistent: persistent, now: now)
            do {
                _ = try await manager.storeCall("touch", logger: logger) { [changes] in
                    try await $0.apply(changes, to: existing.key, ifVersion: nil, now: now)
                }
            } catch {
                // The response does not depend on the touch; the session just ages sooner.
                logger.warning("session touch failed", metadata: ["session": "\(existing.key.shortHash)"])
            }
        }
        if let token, snapshot.issued || snapshot.rotateRequested || snapshot.rememberMe != nil {
            outcome.setCookie = manager.cookie(for: token, of: written, now: now)
        }
    }

    private func changedMeanwhile(_ session: StoredSession) -> SessionError {
        logger.warning(
            "session changes not written: the session was ended or replaced by another request",
            metadata: ["session": "\(session.key.shortHash)"]
        )
        return SessionError.sessionChanged
    }

    // MARK: Loading

    /// The stored session this request sees, loading it on first use.
    private func loadedSession() async throws -> StoredSession? {
        enum Step {
            case done(StoredSession?)
            case wait
            case load(SessionStorageKey)
        }
        let step = try record { state -> Step in
            switch state.load {
            case .loaded(let session): return .done(session)
            case .failed(let error): throw error
            case .loading: return .wait
            case .notLoaded:
                guard let token = state.token else {
                    state.load = .loaded(nil)
                    return .done(nil)
                }
                state.load = .loading(waiters: [])
                state.looked = true
                return .load(token.storageKey)
            }
        }
        switch step {
        case .done(let session):
            return session
        case .wait:
            return try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Result<StoredSession?, any Error>? in
                    switch state.load {
                    case .loading(var waiters):
                        waiters.append(continuation)
                        state.load = .loading(waiters: waiters)
                        return nil
                    case .loaded(let session): return .success(session)
                    case .failed(let error): return .failure(error)
                    case .notLoaded: return .success(nil)
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        case .load(let key):
            let now = manager.now()
            let result = await Result(awaiting: {
                try await manager.storeCall("load", logger: logger) { try await $0.load(key, now: now) }
            })
            let waiters = state.withLock { state -> [CheckedContinuation<StoredSession?, any Error>] in
                guard case .loading(let waiters) = state.load else { return [] }
                switch result {
                case .success(let session): state.load = .loaded(session)
                case .failure(let error):
                    state.load = .failed(error as? SessionError ?? SessionError(code: .storeUnavailable, message: "\(error)"))
                }
                return waiters
            }
            for waiter in waiters { waiter.resume(with: result) }
            if case .success(nil) = result {
                logger.debug("session token matches no live session; treated as no session")
            }
            return try result.get()
        }
    }

    private func value<Value: Codable & Sendable>(named name: String, as type: Value.Type) async throws -> Value? {
        if let change = try record({ $0.pending[name] }) {
            return decode(change, named: name, as: Value.self)
        }
        guard let session = try await loadedSession(), let stored = session.values[name] else { return nil }
        let value = decode(stored, named: name, as: Value.self)
        if let value, !stored.hasLiveValue {
            // Keep the decoded value so later reads in this request skip decoding.
            state.withLock { state in
                if case .loaded(var current?) = state.load, current.version == session.version {
                    current.values[name] = stored.holding(decoded: value)
                    state.load = .loaded(current)
                }
            }
        }
        return value
    }

    private func decode<Value: Codable & Sendable>(_ stored: SessionValue?, named name: String, as type: Value.Type) -> Value? {
        guard let stored else { return nil }
        do {
            return try stored.decode(as: Value.self)
        } catch {
            logger.warning(
                "session value does not decode as its key's type; read as absent",
                metadata: ["key": "\(name)", "type": "\(Value.self)", "error": "\(error)"]
            )
            return nil
        }
    }

    /// Creates the stored session at once from the pending values (for `update` on a
    /// request that has none yet).
    private func insertNewSession() async throws {
        let (values, rememberMe) = try record { ($0.pending.compactMapValues { $0 }, $0.rememberMe) }
        let now = manager.now()
        let token = SessionToken.generate()
        let fresh = manager.newRecord(key: token.storageKey, values: values, persistent: rememberMe ?? false, client: client(), now: now)
        try await manager.storeCall("insert", logger: logger) { try await $0.insert(fresh) }
        manager.events.emit(.created, fresh.key, userID: nil, at: now)
        try record { state in
            state.token = token
            state.issued = true
            state.load = .loaded(fresh)
            for name in values.keys { state.pending[name] = nil }
        }
    }

    /// Runs `body` on the state unless the session is committed.
    private func record<Result>(_ body: (inout State) throws -> Result) throws -> Result {
        try state.withLock { state in
            switch state.phase {
            case .open: return try body(&state)
            case .committed: throw SessionError.committed
            case .unattached: throw SessionError.notAttached
            }
        }
    }
}

/// A stored session's metadata as a handler may show it.
public struct SessionInfo: Sendable, Hashable {
    /// The session's public name (``SessionStorageKey/handle``), never its token.
    public var handle: String
    public var createdAt: Date
    public var lastSeenAt: Date
    public var idleDeadline: Date
    public var absoluteDeadline: Date
    public var userID: String?
    public var authenticatedAt: Date?
    public var isPersistent: Bool
    public var client: SessionClient
    /// When the session ends if nothing else happens: the earlier deadline.
    public var expiresAt: Date { min(idleDeadline, absoluteDeadline) }
    /// A short name for the client's device, from its user agent ("Firefox on Linux").
    public var device: String { DeviceLabel.describe(userAgent: client.userAgent) }

    public init(_ session: StoredSession) {
        handle = session.key.handle
        createdAt = session.createdAt
        lastSeenAt = session.lastSeenAt
        idleDeadline = session.idleDeadline
        absoluteDeadline = session.absoluteDeadline
        userID = session.userID
        authenticatedAt = session.authenticatedAt
        isPersistent = session.isPersistent
        client = session.client
    }
}
