package import Foundation
package import Logging
import Synchronization

/// The session as one request's handler sees it.
///
/// Lazy: nothing is loaded until the first read, and concurrent first reads share one
/// load. ``set(_:_:)``, ``remove(_:)``, ``rotate()``, ``destroy()`` and
/// ``rememberMe(_:)`` are recorded and written once, after the handler, by
/// ``SessionManager/commit(_:)``. ``update(_:_:)`` and ``authenticate(userID:rememberMe:)``
/// write at once, because the handler needs their outcome. After the commit every use
/// throws ``SessionError/Code/committed``.
///
/// Errors thrown are ``SessionError``s.
public final class RequestSession: Sendable {
    private enum Load {
        case notLoaded
        case loading(waiters: [CheckedContinuation<SessionLookup, any Error>])
        case loaded(SessionLookup)
        case failed(SessionError)
    }

    private struct State {
        /// The token the client holds, or will be sent when `issued`.
        var token: SessionToken?
        var load = Load.notLoaded
        var changes = SessionRequestChanges()
        /// The token was made by this request and must be delivered.
        var issued = false
        /// A token from the client was looked up.
        var looked = false
        var phase = Phase.open
        /// The request proved its session's device binding (its bound cookie, or a proof
        /// signed by the device's key at the refresh endpoint).
        var deviceAdmitted = false
    }

    private enum Phase {
        case open
        case committed
        /// Made by a request context before any session middleware ran.
        case unattached
    }

    /// What the manager commits: the request's state when the handler is done.
    package struct Snapshot: Sendable {
        package var token: SessionToken?
        package var issued: Bool
        package var looked: Bool
        package var changes: SessionRequestChanges
        /// What the request knows of its stored session, or the error its load met.
        package var lookup: Result<SessionLookup, SessionError>
    }

    /// `nil` only for the placeholder, whose every use throws before reaching it.
    private let manager: SessionManager?
    /// How the token came, and how a new one would leave.
    package let carrier: any SessionCarrier
    /// The session the client presented, for a carrier that holds it (a sealed cookie).
    package let held: StoredSession?
    /// The request's bound cookie, read only when the manager has a device guard.
    private let deviceCredential: String?
    /// Who the client is, worked out only when a session is created or signed in (most
    /// requests never need it).
    private let makeClient: @Sendable () -> SessionClient
    package let logger: Logger
    private let state: Mutex<State>

    package init(
        manager: SessionManager?,
        carrier: any SessionCarrier,
        token: SessionToken?,
        held: StoredSession? = nil,
        deviceCredential: String? = nil,
        client: @escaping @Sendable () -> SessionClient,
        logger: Logger,
        attached: Bool = true
    ) {
        self.manager = manager
        self.carrier = carrier
        self.held = held
        self.deviceCredential = deviceCredential
        self.makeClient = client
        self.logger = logger
        self.state = Mutex(State(token: token, phase: attached ? .open : .unattached))
    }

    /// A placeholder for request contexts to hold until session middleware replaces it.
    /// Every use throws ``SessionError/Code/notAttached``.
    /// One shared instance: its state never changes, so every context can hold it without
    /// an allocation per request.
    public static func unattached() -> RequestSession { placeholder }

    private static let placeholder = RequestSession(
        manager: nil,
        carrier: .cookie,
        token: nil,
        client: { SessionClient() },
        logger: Logger(label: "sessionkit.unattached"),
        attached: false
    )

    /// The carrier that brought this request's token, or that would deliver a new one.
    public var carrierKind: SessionCarrierKind { carrier.kind }

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
        try record { $0.changes.values[key.name] = .some(SessionValue(value)) }
    }

    /// Removes the value under `key` when the response is committed.
    public func remove<Value>(_ key: SessionKey<Value>) throws {
        try record { $0.changes.values[key.name] = .some(nil) }
    }

    /// Stores a flash value: one that the next ``flash(_:)`` of `key` returns and removes.
    public func setFlash<Value>(_ key: SessionKey<Value>, _ value: Value) throws {
        try record { $0.changes.values[key.flashName] = .some(SessionValue(value)) }
    }

    /// Returns the flash value of `key` and removes it, so it is shown once.
    public func flash<Value>(_ key: SessionKey<Value>) async throws -> Value? {
        guard let value = try await value(named: key.flashName, as: Value.self) else { return nil }
        try record { $0.changes.values[key.flashName] = .some(nil) }
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
        let manager = try attachedManager()
        let lookup = try await lookedUp()
        guard let current = lookup.session else {
            if case .ended = lookup { throw SessionError.sessionChanged }
            var value = try await get(key)
            try body(&value)
            try record { $0.changes.values[key.name] = .some(value.map { SessionValue($0) }) }
            try await insertNewSession(manager)
            return value
        }
        let configuration = manager.configuration
        return try await manager.updateLocks.withLock(current.key) {
            for attempt in 1...configuration.maxUpdateAttempts {
                let now = manager.now()
                // A session the client holds is as fresh as it gets; its write checks that it
                // was not ended meanwhile, so looking it up again would only cost a round trip.
                let fresh =
                    carrier.holdsSessions
                    ? current : try await manager.lookUp(current.key, carrier: carrier, now: now, logger: logger).session
                guard let fresh else {
                    manager.instruments.count(.ended)
                    try? record { $0.load = .loaded(.ended(current.key)) }
                    throw SessionError.sessionChanged
                }
                var value = decode(fresh.values[key.name], named: key.name, as: Value.self)
                try body(&value)
                let write = SessionCommitPlan.update(
                    value.map { SessionValue($0) }, named: key.name, in: fresh, configuration: configuration, now: now)
                switch try await manager.perform(write, held: fresh, logger: logger) {
                case .written(let written?):
                    try record { state in
                        state.load = .loaded(.live(written))
                        state.changes.values[key.name] = nil
                        // A cookie that holds the session must carry the write.
                        if carrier.holdsSessions { state.issued = true }
                    }
                    return value
                case .written(nil), .missing:
                    try? record { $0.load = .loaded(.ended(current.key)) }
                    throw SessionError.sessionChanged
                case .conflict:
                    if attempt < configuration.maxUpdateAttempts {
                        manager.instruments.countUpdateRetry()
                        // Jittered exponential back-off before the next attempt.
                        let ceiling = min(100, 2 << min(attempt, 6))
                        try? await manager.clock.sleep(for: .milliseconds(Int.random(in: 1...ceiling)))
                    }
                }
            }
            logger.debug("session update gave up after repeated conflicts", metadata: ["sessionkit.session": "\(current.key.shortHash)"])
            throw SessionError(code: .updateConflict, message: "the session kept changing; the update was not written")
        }
    }

    // MARK: Lifecycle

    /// Signs `userID` in: moves the session to a new token (the old one is dead at once),
    /// records the sign-in time and client, and indexes the user. The absolute lifetime
    /// starts again from now. Written at once.
    ///
    /// An anonymous session, or one of the same user, keeps its values; a session of
    /// another user is replaced by one holding only what this request set. Remember-me is
    /// what `rememberMe` says, never inherited from the session signed in on.
    /// - Throws: ``SessionError/Code/sessionChanged`` when the session was ended meanwhile,
    ///   ``SessionError/Code/unsupportedForBearer`` on a request carried by a bearer token
    ///   (its client cannot be handed the new token),
    ///   ``SessionError/Code/sessionLimitReached`` when the user's limit refuses it.
    public func authenticate(userID: String, rememberMe: Bool = false) async throws {
        let manager = try attachedManager()
        guard carrier.deliversNewTokens else { throw SessionError.unsupportedForBearer }
        let lookup = try await lookedUp()
        let pending = try record { $0.changes.values }
        let now = manager.now()
        let token = SessionToken.generate()
        let signIn = SessionCommitPlan.signIn(
            userID: userID,
            rememberMe: rememberMe,
            lookup: lookup,
            pending: pending,
            client: makeClient(),
            configuration: manager.configuration,
            now: now,
            newToken: token
        )
        guard case .written(let signedIn?) = try await manager.perform(.signIn(signIn), held: lookup.session, logger: logger) else {
            try? record { $0.load = .loaded(lookup.session.map { .ended($0.key) } ?? lookup) }
            throw SessionError.sessionChanged
        }
        try record { state in
            state.token = token
            state.issued = true
            state.load = .loaded(.live(signedIn))
            state.changes.rotate = false
            for name in pending.keys { state.changes.values[name] = nil }
        }
        logger.debug("session authenticated", metadata: ["sessionkit.session": "\(token.storageKey.shortHash)"])
    }

    /// Moves the session to a new token when the response is committed; the old token
    /// stops working. Use it when privileges change.
    /// - Throws: ``SessionError/Code/unsupportedForBearer`` on a request carried by a
    ///   bearer token.
    public func rotate() throws {
        guard carrier.deliversNewTokens else { throw SessionError.unsupportedForBearer }
        try record { $0.changes.rotate = true }
    }

    /// Ends the session when the response is committed: it is deleted from the store and
    /// the client told to drop its token.
    public func destroy() throws {
        try record { $0.changes.destroy = true }
    }

    /// Switches "remember me": the longer limits of
    /// ``SessionConfiguration/rememberMeIdleTimeout`` and
    /// ``SessionConfiguration/rememberMeAbsoluteLifetime``, and a cookie that outlives
    /// the browser, or back to the ordinary ones. Written when the response is committed.
    public func rememberMe(_ enabled: Bool) throws {
        try record { $0.changes.rememberMe = enabled }
    }

    /// The stored session's metadata, or `nil` when nothing is stored for this client.
    public func info() async throws -> SessionInfo? {
        try await lookedUp().session.map(SessionInfo.init)
    }

    /// The signed-in user, or `nil`.
    public func userID() async throws -> String? {
        try await lookedUp().session?.userID
    }

    /// Ends every other session of the signed-in user ("sign out everywhere else") at
    /// once, and returns how many. Does nothing for an anonymous session.
    @discardableResult
    public func revokeOtherSessions() async throws -> Int {
        let manager = try attachedManager()
        guard let current = try await lookedUp().session, let userID = current.userID else { return 0 }
        return try await manager.revokeAll(ofUser: userID, except: current.key)
    }

    // MARK: Commit

    /// Closes the session to the handler and returns what the request did, once: a
    /// second call, or one on the placeholder, returns `nil`.
    package func closeForCommit() -> Snapshot? {
        switch closeForCommit(if: { _ in true }) {
        case .claimed(let snapshot): snapshot
        case .alreadyCommitted, .declined: nil
        }
    }

    /// What ``closeForCommit(if:)`` found.
    package enum CommitClaim {
        /// Another commit came first.
        case alreadyCommitted
        /// The check declined this snapshot; the session stays open.
        case declined
        /// The session is closed for commit with this snapshot.
        case claimed(Snapshot)
    }

    /// Closes the session for commit only if `accepts` its snapshot, checked and closed
    /// under one lock, so no change can slip in between. `accepts` must not use the session.
    package func closeForCommit(if accepts: (Snapshot) -> Bool) -> CommitClaim {
        state.withLock { state -> CommitClaim in
            guard state.phase == .open else { return .alreadyCommitted }
            let lookup: Result<SessionLookup, SessionError>
            switch state.load {
            case .loaded(let found): lookup = .success(found)
            case .failed(let error): lookup = .failure(error)
            case .notLoaded, .loading: lookup = .success(state.token.map { .unread($0.storageKey) } ?? .noToken)
            }
            let snapshot = Snapshot(token: state.token, issued: state.issued, looked: state.looked, changes: state.changes, lookup: lookup)
            guard accepts(snapshot) else { return .declined }
            state.phase = .committed
            return .claimed(snapshot)
        }
    }

    /// Who the client appears to be: its address (the connection's, or the one a trusted
    /// proxy names) and user agent, as a session created or signed in now records them.
    public var client: SessionClient { makeClient() }

    // MARK: Device binding

    /// Refuses a session bound to a device (DBSC) to a request that has not proved the
    /// binding, when the manager guards bindings.
    /// - Throws: ``SessionError/Code/deviceBindingRequired``.
    func admit(_ binding: SessionDeviceBinding, now: Date) throws(SessionError) {
        guard admits(binding, now: now) else {
            logger.debug("session is bound to a device and the request did not prove it; refused")
            throw .deviceBindingRequired
        }
    }

    /// Whether this request may use a session bound as `binding`: no guard, or the proof
    /// checked (once per request).
    func admits(_ binding: SessionDeviceBinding, now: Date) -> Bool {
        guard let deviceGuard = manager?.deviceGuard, !state.withLock({ $0.deviceAdmitted }) else { return true }
        guard deviceGuard.admits(binding, credential: deviceCredential, now: now) else { return false }
        state.withLock { $0.deviceAdmitted = true }
        return true
    }

    /// The stored session as looked up, before the device-binding check: for the refresh
    /// endpoint, which checks a proof instead.
    package func storedSessionIgnoringDeviceBinding() async throws -> StoredSession? {
        try await lookedUpUnchecked().session
    }

    /// Replaces the stored session's device binding when it is `expected`, at once, and
    /// admits this request to the session so bound (for `SessionKitDeviceBound`'s
    /// endpoints, which have checked a proof by the device's key).
    package func replaceDeviceBinding(expected: SessionDeviceBinding?, with binding: SessionDeviceBinding) async throws
        -> SessionApplyResult
    {
        let manager = try attachedManager()
        guard let current = try await lookedUpUnchecked().session else { return .missing }
        let result = try await manager.replaceDeviceBinding(of: current.key, expected: expected, with: binding, logger: logger)
        try record { state in
            switch result {
            case .applied(let written):
                state.load = .loaded(.live(written))
                state.deviceAdmitted = true
            case .missing: state.load = .loaded(.ended(current.key))
            case .conflict: break
            }
        }
        return result
    }

    // MARK: Loading

    /// What this request knows of its stored session, looking it up on first use, and
    /// refused when it is bound to a device the request did not prove.
    private func lookedUp() async throws -> SessionLookup {
        let found = try await lookedUpUnchecked()
        if let binding = found.session?.deviceBinding, let manager {
            try admit(binding, now: manager.now())
        }
        return found
    }

    /// What this request knows of its stored session, looking it up on first use.
    ///
    /// The async functions of the request path keep to the values their awaits need, with
    /// the rest in synchronous functions: every byte of an async function's frame is taken
    /// from its task's allocator, and a frame that outgrows a slab costs a `malloc` (on
    /// Vapor, whose handlers each run in a new task, on every request).
    private func lookedUpUnchecked() async throws -> SessionLookup {
        switch try nextLoadStep() {
        case .done(let found):
            return found
        case .wait:
            return try await loadByAnotherCall()
        case .load(let key, let manager):
            let result = await Result(awaiting: {
                try await manager.lookUp(key, carrier: carrier, held: held, now: manager.now(), logger: logger)
            })
            finishLoad(with: result)
            return try result.get()
        }
    }

    private enum LoadStep {
        case done(SessionLookup)
        case wait
        case load(SessionStorageKey, SessionManager)
    }

    /// What the first use of the session does: answer what is known, wait for the load
    /// another call started, or load (recorded as loading).
    @inline(never)
    private func nextLoadStep() throws -> LoadStep {
        let manager = try attachedManager()
        return try record { state -> LoadStep in
            switch state.load {
            case .loaded(let found): return .done(found)
            case .failed(let error): throw error
            case .loading: return .wait
            case .notLoaded:
                guard let token = state.token else {
                    state.load = .loaded(.noToken)
                    return .done(.noToken)
                }
                state.load = .loading(waiters: [])
                state.looked = true
                return .load(token.storageKey, manager)
            }
        }
    }

    /// The answer of the load another call of this request started.
    private func loadByAnotherCall() async throws -> SessionLookup {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<SessionLookup, any Error>? in
                switch state.load {
                case .loading(var waiters):
                    waiters.append(continuation)
                    state.load = .loading(waiters: waiters)
                    return nil
                case .loaded(let found): return .success(found)
                case .failed(let error): return .failure(error)
                case .notLoaded: return .success(.noToken)
                }
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    /// Records the load's `result` and gives it to the calls that waited for it.
    @inline(never)
    private func finishLoad(with result: Result<SessionLookup, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<SessionLookup, any Error>] in
            guard case .loading(let waiters) = state.load else { return [] }
            switch result {
            case .success(let found): state.load = .loaded(found)
            case .failure(let error):
                state.load = .failed(error as? SessionError ?? SessionError(code: .storeUnavailable, message: "\(error)"))
            }
            return waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    private func value<Value: Codable & Sendable>(named name: String, as type: Value.Type) async throws -> Value? {
        if let change = try record({ $0.changes.values[name] }) {
            return decode(change, named: name, as: Value.self)
        }
        guard let session = try await lookedUp().session, let stored = session.values[name] else { return nil }
        let value = decode(stored, named: name, as: Value.self)
        if let value, !stored.readsWithoutDecoding {
            // Keep the decoded value so later reads in this request skip decoding.
            state.withLock { state in
                if case .loaded(.live(var current)) = state.load, current.version == session.version {
                    current.values[name] = stored.holding(decoded: value)
                    state.load = .loaded(.live(current))
                }
            }
        }
        return value
    }

    /// A decoding failure's kind (`typeMismatch`, `dataCorrupted`, ...), without the message.
    private static func kind(of error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(type(of: error))" }
        return switch error {
        case .typeMismatch: "typeMismatch"
        case .valueNotFound: "valueNotFound"
        case .keyNotFound: "keyNotFound"
        case .dataCorrupted: "dataCorrupted"
        @unknown default: "DecodingError"
        }
    }

    private func decode<Value: Codable & Sendable>(_ stored: SessionValue?, named name: String, as type: Value.Type) -> Value? {
        guard let stored else { return nil }
        do {
            return try stored.decode(as: Value.self)
        } catch {
            logger.warning(
                "session value does not decode as its key's type; read as absent",
                // The error's kind only: a decoder's message can quote the stored value.
                metadata: ["sessionkit.key": "\(name)", "sessionkit.type": "\(Value.self)", "error": "\(Self.kind(of: error))"]
            )
            return nil
        }
    }

    /// Creates the stored session at once from the pending values (for `update` on a
    /// request that has none yet), as the commit plan would after the handler.
    private func insertNewSession(_ manager: SessionManager) async throws {
        let changes = try record { $0.changes }
        var token: SessionToken?
        let plan = SessionCommitPlan.commit(
            SessionRequestChanges(values: changes.values, rememberMe: changes.rememberMe),
            token: nil,
            issued: false,
            lookup: .noToken,
            deliversNewTokens: carrier.deliversNewTokens,
            holdsSession: carrier.holdsSessions,
            client: makeClient,
            configuration: manager.configuration,
            now: manager.now(),
            newToken: {
                let fresh = SessionToken.generate()
                token = fresh
                return fresh
            }
        )
        switch plan.step {
        case .refuse(let error): throw error
        case .write(let operation):
            guard case .written(let fresh?) = try await manager.perform(operation, logger: logger), let token else {
                throw SessionError.sessionChanged
            }
            try record { state in
                state.token = token
                state.issued = true
                state.load = .loaded(.live(fresh))
                for name in changes.values.keys { state.changes.values[name] = nil }
                state.changes.rememberMe = nil
            }
        case .done, .lookUp: break
        }
    }

    /// Now, by the manager's wall clock.
    package func now() throws -> Date { try attachedManager().now() }

    private func attachedManager() throws -> SessionManager {
        guard let manager else { throw SessionError.notAttached }
        return manager
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
