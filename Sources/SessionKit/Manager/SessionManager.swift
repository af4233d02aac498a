public import Foundation
public import Logging

/// The policy between the web framework and the store: it hands each request a lazy
/// ``RequestSession`` and commits it after the handler.
///
/// Adapters call ``session(for:carriers:client:logger:)`` before the handler and
/// ``commit(_:)`` after it (also when the handler threw), then apply the
/// ``SessionCommitOutcome`` to the response.
public final class SessionManager: Sendable {
    /// Where sessions live. For a sealed manager: the revocations' store, or an empty
    /// memory store when there is none (nothing is ever written to it).
    public let store: any SessionStore
    /// Timeouts, cookie, limits: validated when the manager is made.
    public let configuration: SessionConfiguration
    let wallClock: any WallClock
    let clock: any Clock<Duration>
    /// The store-call time limit.
    let deadline: Deadline
    let logger: Logger
    let updateLocks = KeyedAsyncLock<SessionStorageKey>()
    /// Whether store calls complete in-process, so they run without a time limit.
    private let callsInProcess: Bool
    /// The store, when it bounds its own loads and plain writes (and is not in-process).
    private let timeLimited: (any TimeLimitedSessionStore)?
    /// Session events, for whoever subscribes.
    public let events: SessionEvents
    /// Metrics and traces (``SessionTelemetry``).
    let instruments: SessionInstruments
    /// Set when sessions are sealed in cookies rather than stored.
    let sealed: Sealed?
    /// Checks requests to sessions bound to a device (DBSC), when the application binds them.
    package let deviceGuard: (any SessionDeviceGuard)?

    /// A sealed manager's parts: its carrier, and the revocations that end its sessions.
    struct Sealed: Sendable {
        let carrier: SealedCookieCarrier
        let revocations: SessionRevocations?
    }

    /// Whether sessions are sealed in cookies rather than stored.
    public var sealsSessions: Bool { sealed != nil }

    /// The carriers a route uses when it names none: the session cookie, or the sealed
    /// cookie for a sealed manager.
    public var carriers: [any SessionCarrier] {
        if let sealed { [sealed.carrier] } else { [.cookie] }
    }

    /// A manager of sessions kept in `store`.
    /// - Parameters:
    ///   - store: Where sessions live.
    ///   - configuration: Timeouts, cookie, limits; validated here.
    ///   - wallClock: The source of `now` for every deadline. Tests pass a manual one.
    ///   - clock: Measures store timeouts and `update` back-off.
    ///   - logger: For work outside a request (listing and revoking sessions); requests
    ///     log to the logger they are given.
    ///   - telemetry: Where metrics and traces go; by default, the backends the
    ///     application bootstrapped before making the manager.
    ///   - deviceGuard: For sessions bound to a device (DBSC): what a request to a bound
    ///     session must prove (``SessionDeviceGuard``). Needs a
    ///     ``DeviceBindingSessionStore``.
    /// - Throws: ``SessionConfigurationError`` naming a setting that cannot work.
    public convenience init(
        store: any SessionStore,
        configuration: SessionConfiguration = SessionConfiguration(),
        wallClock: any WallClock = SystemWallClock(),
        clock: any Clock<Duration> = ContinuousClock(),
        logger: Logger = Logger(label: "sessionkit"),
        telemetry: SessionTelemetry = SessionTelemetry(),
        deviceGuard: (any SessionDeviceGuard)? = nil
    ) throws(SessionConfigurationError) {
        try configuration.validate()
        if configuration.maxSessionsPerUser != nil, !(store is any UserIndexedSessionStore) {
            throw SessionConfigurationError(
                setting: "maxSessionsPerUser",
                message: "needs a store that keeps a per-user index (UserIndexedSessionStore); \(type(of: store)) does not"
            )
        }
        if deviceGuard != nil, !(store is any DeviceBindingSessionStore) {
            throw SessionConfigurationError(
                setting: "deviceGuard",
                message: "needs a store that keeps device bindings (DeviceBindingSessionStore); \(type(of: store)) does not"
            )
        }
        self.init(
            store: store, sealed: nil, configuration: configuration, wallClock: wallClock, clock: clock, logger: logger,
            telemetry: telemetry, deviceGuard: deviceGuard)
    }

    /// A manager that keeps no sessions: each is sealed (AES-256-GCM) into the session
    /// cookie under `sealing`'s first key.
    ///
    /// With `revocations`, logout, rotation and sign-in end the old cookie for good, "sign
    /// out everywhere" ends a user's sealed sessions on other clients, and a write by a
    /// request whose session was ended meanwhile answers 409 `session_changed`; each
    /// request that reads its session pays one round trip to that store. Without it, an
    /// ended session's cookie, replayed, opens until its idle or absolute deadline.
    ///
    /// A sealed manager cannot list a user's sessions, limit them, or issue bearer tokens:
    /// those answer ``SessionError/Code/unsupportedByStore``.
    /// - Throws: ``SessionConfigurationError`` naming a setting that cannot work, such as
    ///   `maxSessionsPerUser` (a limit needs a per-user index).
    public convenience init(
        sealing: SessionSealing,
        revocations: SessionRevocations? = nil,
        configuration: SessionConfiguration = SessionConfiguration(),
        wallClock: any WallClock = SystemWallClock(),
        clock: any Clock<Duration> = ContinuousClock(),
        logger: Logger = Logger(label: "sessionkit"),
        telemetry: SessionTelemetry = SessionTelemetry()
    ) throws(SessionConfigurationError) {
        try configuration.validate()
        if configuration.maxSessionsPerUser != nil {
            throw SessionConfigurationError(
                setting: "maxSessionsPerUser", message: "needs server-side sessions; sealed cookies keep no per-user index")
        }
        self.init(
            store: revocations?.store ?? MemorySessionStore(),
            sealed: Sealed(carrier: SealedCookieCarrier(sealing: sealing), revocations: revocations),
            configuration: configuration,
            wallClock: wallClock,
            clock: clock,
            logger: logger,
            telemetry: telemetry,
            deviceGuard: nil
        )
    }

    private init(
        store: any SessionStore,
        sealed: Sealed?,
        configuration: SessionConfiguration,
        wallClock: any WallClock,
        clock: any Clock<Duration>,
        logger: Logger,
        telemetry: SessionTelemetry,
        deviceGuard: (any SessionDeviceGuard)?
    ) {
        self.store = store
        self.sealed = sealed
        self.deviceGuard = deviceGuard
        self.callsInProcess = store is any InProcessSessionStore
        self.timeLimited = callsInProcess || sealed != nil ? nil : store as? any TimeLimitedSessionStore
        self.configuration = configuration
        self.wallClock = wallClock
        self.clock = clock
        self.deadline = Deadline(limit: configuration.storeTimeout, clock: clock)
        self.logger = logger
        // A sealed manager's only store calls are its revocations'.
        self.instruments = SessionInstruments(telemetry, storeKind: store.kind)
        self.events = SessionEvents(instruments: instruments)
    }

    /// The session of one request, from the credential it presents through one of
    /// `carriers` (tried in order). Nothing is loaded until the handler reads it. A
    /// credential that is not exactly a well-formed token counts as no session and never
    /// reaches the store. A request without a credential gets a session the first carrier
    /// would deliver. `client` is evaluated only if the request creates or signs in a
    /// session, and is kept as long as the returned session: it must not capture an object
    /// that will hold that session (a framework's request class, say), or neither is ever
    /// freed.
    /// - Throws: ``SessionError/Code/ambiguousCredentials`` (400) when the request presents
    ///   credentials through two of the carriers.
    public func session(
        for request: some SessionCarrierRequest,
        carriers: [any SessionCarrier],
        client: @autoclosure @escaping @Sendable () -> SessionClient,
        logger: Logger
    ) throws(SessionError) -> RequestSession {
        var chosen: (carrier: any SessionCarrier, credential: SessionCredential)?
        for carrier in carriers {
            guard carrier.holdsSessions == (sealed != nil) else {
                logger.error("session carrier does not fit the manager", metadata: ["sessionkit.carrier": "\(carrier.kind)"])
                throw SessionError.misconfiguredCarrier(carrier.kind, sealed: sealed != nil)
            }
            let credential = carrier.credential(in: request, configuration: configuration)
            guard credential.isPresented else { continue }
            guard chosen == nil else {
                logger.debug("request presents credentials through two carriers; refused")
                throw .ambiguousCredentials
            }
            chosen = (carrier, credential)
        }
        deviceGuard?.inspect(request, logger: logger)
        if let chosen, chosen.credential.token == nil {
            logger.debug(
                "session credential is malformed or repeated; treated as no session",
                metadata: ["sessionkit.carrier": "\(chosen.carrier.kind)"])
        }
        return RequestSession(
            manager: self,
            carrier: chosen?.carrier ?? carriers.first ?? self.carriers[0],
            token: chosen?.credential.token,
            held: chosen?.credential.sealedSession,
            deviceCredential: deviceGuard.flatMap { deviceGuard in
                let values = CookieHeader.values(named: deviceGuard.boundCookieName, in: request.headerValues(.cookie))
                return values.count == 1 ? String(values[0]) : nil
            },
            client: client,
            logger: logger
        )
    }

    /// Writes what the request changed (at most one store write, as the commit plan
    /// decides) and says what the response needs. After this, the
    /// session throws on every use.
    public func commit(_ session: RequestSession) async -> SessionCommitOutcome {
        guard let snapshot = session.closeForCommit() else { return SessionCommitOutcome() }
        var outcome = SessionCommitOutcome(sessionRead: snapshot.looked)
        let now = now()
        // The awaits are here; what happens between them is in synchronous functions, so
        // that this frame (taken from the task's allocator) holds little more than they need.
        do {
            guard var lookup = try Self.lookupToCommit(snapshot) else { return outcome }
            var plan = commitPlan(snapshot, lookup, of: session, now: now)
            if let key = keyToLookUp(before: plan, lookup: lookup, snapshot: snapshot) {
                // A blind write: the session decides whether to change it or start anew. Or
                // ending a session, which is using it: one bound to a device ends only from that device.
                outcome.sessionRead = true
                lookup = try await lookUp(key, carrier: session.carrier, held: session.held, now: now, logger: session.logger)
                plan = commitPlan(snapshot, lookup, of: session, now: now)
            }
            var written = lookup.session
            if let operation = try operationToWrite(plan, lookup: lookup, snapshot: snapshot, of: session, now: now) {
                // A logout need not have read the session; a sealed one is the cookie's.
                let result = try await perform(operation, held: lookup.session ?? session.held, logger: session.logger)
                written = try sessionWritten(by: result, replacing: written, snapshot: snapshot, logger: session.logger)
            }
            outcome.headerFields = responseFields(plan.effect, written: written, of: session, now: now)
        } catch {
            outcome.fail(error)
        }
        return outcome
    }

    /// What the request knew of its session when its handler was done; `nil` when its load
    /// failed and committing needs no session (the failure then fails nothing).
    private static func lookupToCommit(_ snapshot: RequestSession.Snapshot) throws(SessionError) -> SessionLookup? {
        switch snapshot.lookup {
        case .success(let found): return found
        case .failure(let error):
            guard snapshot.changes.writes || snapshot.changes.destroy else { return nil }
            throw error
        }
    }

    /// The key to look up before committing `plan`: a blind write's, or a bound session's
    /// being ended without having been read.
    @inline(never)
    private func keyToLookUp(before plan: SessionCommitPlan, lookup: SessionLookup, snapshot: RequestSession.Snapshot) -> SessionStorageKey?
    {
        if case .lookUp(let key) = plan.step { return key }
        if deviceGuard != nil, snapshot.changes.destroy, case .unread(let key) = lookup { return key }
        return nil
    }

    /// The store operation `plan` makes, if any; throws the error a refused plan answers.
    @inline(never)
    private func operationToWrite(
        _ plan: SessionCommitPlan, lookup: SessionLookup, snapshot: RequestSession.Snapshot, of session: RequestSession, now: Date
    ) throws(SessionError) -> SessionOperation? {
        switch plan.step {
        case .done, .lookUp:
            return nil
        case .refuse(let error):
            if error.code == .sessionChanged { instruments.count(.ended) }
            session.logger.debug(
                "session changes not written: \(error.message)",
                metadata: ["sessionkit.session": "\(snapshot.token?.storageKey.shortHash ?? "none")"]
            )
            throw error
        case .write(let operation):
            guard let binding = lookup.session?.deviceBinding, !session.admits(binding, now: now) else { return operation }
            // A refresh of the idle deadline is skipped, not refused: the request was
            // answered already (a refusal, or a refresh endpoint's challenge), and must
            // not extend the session.
            guard case .touch = operation else { throw SessionError.deviceBindingRequired }
            return nil
        }
    }

    /// The session as a commit's write left it, from the write's `result`; `read` is the
    /// session as the request knew it. Throws `sessionChanged` when the write found it ended or replaced.
    @inline(never)
    private func sessionWritten(
        by result: OperationResult, replacing read: StoredSession?, snapshot: RequestSession.Snapshot, logger: Logger
    ) throws(SessionError) -> StoredSession? {
        switch result {
        case .written(let session):
            // A client-held session that could not be refreshed keeps the cookie it has.
            return session ?? (sealed == nil ? read : nil)
        case .missing, .conflict:
            logger.debug(
                "session changes not written: the session was ended or replaced by another request",
                metadata: ["sessionkit.session": "\(snapshot.token?.storageKey.shortHash ?? "none")"]
            )
            throw SessionError.sessionChanged
        }
    }

    /// The carrier's response fields for a commit's `effect`, once the session is `written`.
    @inline(never)
    private func responseFields(_ effect: SessionCommitPlan.Effect?, written: StoredSession?, of session: RequestSession, now: Date)
        -> [SessionHeaderField]
    {
        switch effect {
        case .deliver(let token)?:
            guard let written else { return [] }
            return session.carrier.responseFields(for: .deliver(token, session: written), configuration: configuration, now: now)
        case .clear?:
            return session.carrier.responseFields(for: .clear, configuration: configuration, now: now)
        case nil:
            return []
        }
    }

    /// Commits `session` at once when that needs no store call and no response field — the
    /// session was not used, or only read with no touch due — and returns the outcome;
    /// `nil` when ``commit(_:)`` must run. Adapters whose middleware can answer without
    /// suspending (Vapor's future-based one) call it first, so most requests pay no task.
    public func commitWithoutStore(_ session: RequestSession) -> SessionCommitOutcome? {
        let now = now()
        let claim = session.closeForCommit { snapshot in
            switch snapshot.lookup {
            case .failure: return !(snapshot.changes.writes || snapshot.changes.destroy)
            case .success(let lookup):
                let plan = commitPlan(snapshot, lookup, of: session, now: now)
                guard case .done = plan.step, plan.effect == nil else { return false }
                return true
            }
        }
        switch claim {
        case .alreadyCommitted: return SessionCommitOutcome()
        case .declined: return nil
        case .claimed(let snapshot): return SessionCommitOutcome(sessionRead: snapshot.looked)
        }
    }

    /// What committing `snapshot` of `session` takes, given what is known of its stored session.
    @inline(never)
    private func commitPlan(_ snapshot: RequestSession.Snapshot, _ lookup: SessionLookup, of session: RequestSession, now: Date)
        -> SessionCommitPlan
    {
        SessionCommitPlan.commit(
            snapshot.changes,
            token: snapshot.token,
            issued: snapshot.issued,
            lookup: lookup,
            deliversNewTokens: session.carrier.deliversNewTokens,
            holdsSession: session.carrier.holdsSessions,
            client: { session.client },
            configuration: configuration,
            now: now,
            newToken: SessionToken.generate
        )
    }

    /// Creates a signed-in session for `userID` carried by a bearer token, apart from the
    /// request's own session, and returns the token: the only time it is shown. For the
    /// endpoint where an API client exchanges credentials for a token. The session counts
    /// against ``SessionConfiguration/maxSessionsPerUser`` like any other.
    /// - Throws: ``SessionError/Code/sessionLimitReached`` when the user's limit refuses it.
    public func issueBearerToken(
        userID: String,
        client: SessionClient = SessionClient(),
        rememberMe: Bool = false
    ) async throws -> IssuedBearerToken {
        if sealed != nil { throw Self.unsupportedWhenSealed("bearer tokens") }
        let now = now()
        let token = SessionToken.generate()
        let signIn = SessionCommitPlan.signIn(
            userID: userID,
            rememberMe: rememberMe,
            lookup: .noToken,
            pending: [StoredSession.carrierValueName: SessionValue(SessionCarrierKind.bearer.rawValue)],
            client: client,
            configuration: configuration,
            now: now,
            newToken: token
        )
        guard case .written(let session?) = try await perform(.signIn(signIn), logger: logger) else {
            throw SessionError.sessionChanged
        }
        return IssuedBearerToken(token: token.text, info: SessionInfo(session))
    }

    // MARK: Sessions of a user

    /// The live sessions of `userID`, most recently active first.
    /// - Throws: ``SessionError/Code/unsupportedByStore`` when the store keeps no per-user index.
    public func sessions(ofUser userID: String) async throws -> [SessionInfo] {
        let now = now()
        return try await indexCall(.listUser) { try await $0.sessions(ofUser: userID, now: now) }.map(SessionInfo.init)
    }

    /// Ends the session of `userID` named `handle`. Returns `false`, and ends nothing,
    /// when `userID` has no live session of that name.
    public func revoke(handle: String, ofUser userID: String) async throws -> Bool {
        let now = now()
        let sessions = try await indexCall(.listUser) { try await $0.sessions(ofUser: userID, now: now) }
        guard let session = sessions.first(where: { $0.key.handle == handle }) else { return false }
        try await revoke(session.key, userID: userID)
        return true
    }

    /// Ends the session named `handle`, whoever it belongs to (for administrators).
    /// Returns `false` when no live session has that handle.
    /// - Throws: ``SessionError/Code/unsupportedByStore`` when the store does not answer
    ///   administrators (``AdministeredSessionStore``).
    public func revoke(handle: String) async throws -> Bool {
        let now = now()
        if sealed != nil { throw Self.unsupportedWhenSealed("sessions by handle") }
        guard let administered = store as? any AdministeredSessionStore else { throw Self.unsupported("administration") }
        guard
            let session = try await storeCall(
                .findHandle, logger: logger, { _ in try await administered.session(withHandle: handle, now: now) })
        else { return false }
        try await revoke(session.key, userID: session.userID)
        return true
    }

    /// Ends every session of `userID` (account disabled, password changed), except the
    /// one named `keptHandle`, and returns how many.
    @discardableResult
    public func revokeAll(ofUser userID: String, except keptHandle: String? = nil) async throws -> Int {
        if sealed != nil {
            try await signOutSealed(userID: userID, except: keptHandle)
            return 0
        }
        var kept: SessionStorageKey?
        if let keptHandle {
            let now = now()
            kept = try await indexCall(.listUser) { try await $0.sessions(ofUser: userID, now: now) }
                .first { $0.key.handle == keptHandle }?.key
        }
        return try await revokeAll(ofUser: userID, except: kept)
    }

    /// Removes expired sessions from the store, reports each as an `expired` event, and
    /// returns how many. Then, when metrics are on and the store can count its sessions
    /// cheaply (``AdministeredSessionStore/liveSessionCount(now:)``), reports the count as
    /// the `sessionkit_live_sessions` gauge. ``SessionPurgeService`` calls it periodically. A store that purges
    /// in batches (``AdministeredSessionStore``) calls `progress` with the count so far
    /// after each.
    @discardableResult
    public func purgeExpired(progress: @escaping @Sendable (Int) -> Void = { _ in }) async throws -> Int {
        let now = now()
        let purged = try await storeCall(.purge, logger: logger) { store in
            if let administered = store as? any AdministeredSessionStore {
                return try await administered.purgeExpired(now: now, progress: progress)
            }
            return try await store.purgeExpired(now: now)
        }
        for session in purged { events.emit(.expired, session.key, userID: session.userID, at: now) }
        if instruments.metricsOn, sealed == nil, let administered = store as? any AdministeredSessionStore,
            let live = try await storeCall(.count, logger: logger, { _ in try await administered.liveSessionCount(now: now) })
        {
            instruments.recordLiveSessions(live)
        }
        return purged.count
    }

    func revoke(_ key: SessionStorageKey, userID: String?) async throws {
        let now = now()
        let until = endedUntil(now)
        try await storeCall(.delete, key: key, logger: logger) { try await $0.delete(key, now: now, rememberEndedUntil: until) }
        events.emit(.revoked, key, userID: userID, at: now)
        logger.debug("session revoked", metadata: ["sessionkit.session": "\(key.shortHash)"])
    }

    func revokeAll(ofUser userID: String, except kept: SessionStorageKey?) async throws -> Int {
        if sealed != nil {
            try await signOutSealed(userID: userID, except: kept?.handle)
            return 0
        }
        let now = now()
        let revoked = try await indexCall(.deleteUser) { try await $0.deleteSessions(ofUser: userID, except: kept, now: now) }
        for key in revoked { events.emit(.revoked, key, userID: userID, at: now) }
        return revoked.count
    }

    // MARK: Running store operations

    /// Now, by the manager's wall clock: what every deadline is measured against (pages
    /// that say "in 29 minutes" count from it).
    public func now() -> Date { wallClock.now() }

    /// Looks the session under `key` up, as `carrier` may see it: a session made for
    /// another carrier is absent to this one.
    /// A client-held session (`held`, from a sealed cookie) is looked up in the revocations.
    package func lookUp(
        _ key: SessionStorageKey,
        carrier: any SessionCarrier,
        held: StoredSession? = nil,
        now: Date,
        logger: Logger
    ) async throws -> SessionLookup {
        if sealed != nil { return try await lookUpSealed(key, held: held, now: now, logger: logger) }
        let found = try await storeCall(.load, key: key, logger: logger, timed: { try await $0.lookUp(key, now: now, within: $1) }) {
            try await $0.lookUp(key, now: now)
        }
        return Self.lookup(found, of: key, as: carrier.kind, logger: logger)
    }

    /// What a request knows of the session under `key` once the store answered `found`,
    /// presented through a carrier of the kind `carrier`.
    @inline(never)
    private static func lookup(_ found: SessionLoadResult, of key: SessionStorageKey, as carrier: SessionCarrierKind, logger: Logger)
        -> SessionLookup
    {
        switch found {
        case .live(let session):
            guard session.carrierKind == carrier else {
                logger.debug("session token presented through another carrier than its own; treated as no session")
                return .absent(key)
            }
            return .live(session)
        case .ended:
            logger.debug("session token was ended moments ago; its writes are refused")
            return .ended(key)
        case .absent:
            logger.debug("session token matches no live session; treated as no session")
            return .absent(key)
        }
    }

    /// Replaces the device binding of the session under `key` when it is `expected`, for
    /// `SessionKitDeviceBound` (``DeviceBindingSessionStore``).
    package func replaceDeviceBinding(
        of key: SessionStorageKey, expected: SessionDeviceBinding?, with binding: SessionDeviceBinding, logger: Logger
    ) async throws -> SessionApplyResult {
        guard let store = store as? any DeviceBindingSessionStore, sealed == nil else {
            throw Self.unsupported("device bindings")
        }
        let now = now()
        return try await storeCall(.bindDevice, key: key, logger: logger) { _ in
            try await store.replaceDeviceBinding(of: key, expected: expected, with: binding, now: now)
        }
    }

    package enum OperationResult: Sendable {
        /// Done; the session as written (`nil` after a delete, or a touch that failed).
        case written(StoredSession?)
        /// The session to change is absent or expired; nothing was written.
        case missing
        /// A compare-and-set met another version; nothing was written.
        case conflict
    }

    /// Runs one store operation and reports what it did as events, and a write that found
    /// its session changed in `sessionkit_write_conflicts_total`. `held` is the session the
    /// operation starts from, as the request knows it: a sealed manager writes to it rather
    /// than to a store, and a store's write need not send back the values it holds.
    package func perform(_ operation: SessionOperation, held: StoredSession? = nil, logger: Logger) async throws -> OperationResult {
        let now = now()
        let result =
            if let sealed {
                try await performSealed(operation, held: held, sealed: sealed, now: now, logger: logger)
            } else {
                try await performStored(operation, read: held, now: now, logger: logger)
            }
        switch result {
        case .conflict: instruments.count(.version)
        case .missing: instruments.count(.ended)
        case .written: break
        }
        return result
    }

    /// `read` is the session the operation starts from, when the request read it.
    ///
    /// Each kind of operation is a function of its own, never inlined here: an async
    /// function's frame is taken from its task's allocator, and one that held every kind's
    /// work would make a plain write pay for a sign-in's.
    @inline(never)
    private func performStored(_ operation: SessionOperation, read: StoredSession?, now: Date, logger: Logger) async throws
        -> OperationResult
    {
        switch operation {
        case .insert(let session):
            return try await insert(session, now: now, logger: logger)
        case .apply(let changes, let key, let version):
            return OperationResult(
                try await apply(changes, to: key, basedOn: read, ifVersion: version, as: .apply, now: now, logger: logger))
        case .touch(let changes, let key):
            return await touch(changes, key, basedOn: read, now: now, logger: logger)
        case .rotate(let from, let to, let changes):
            return try await rotate(from: from, to: to, applying: changes, now: now, logger: logger)
        case .signIn(let signIn):
            return try await performSignIn(signIn, now: now, logger: logger)
        case .delete(let key, let userID):
            return try await delete(key, userID: userID, now: now, logger: logger)
        }
    }

    @inline(never)
    private func insert(_ session: StoredSession, now: Date, logger: Logger) async throws -> OperationResult {
        try await storeCall(.insert, key: session.key, logger: logger) { try await $0.insert(session, now: now) }
        logger.debug("session created", metadata: ["sessionkit.session": "\(session.key.shortHash)"])
        events.emit(.created, session.key, userID: session.userID, at: now)
        return .written(session)
    }

    /// The response does not depend on a touch: a session ended meanwhile or a failing
    /// store just means it ages sooner.
    @inline(never)
    private func touch(_ changes: SessionChanges, _ key: SessionStorageKey, basedOn read: StoredSession?, now: Date, logger: Logger) async
        -> OperationResult
    {
        do {
            return .written(try await apply(changes, to: key, basedOn: read, ifVersion: nil, as: .touch, now: now, logger: logger).session)
        } catch {
            logger.debug("session touch failed", metadata: ["sessionkit.session": "\(key.shortHash)"])
            return .written(nil)
        }
    }

    @inline(never)
    private func rotate(from: SessionStorageKey, to: SessionStorageKey, applying changes: SessionChanges, now: Date, logger: Logger)
        async throws -> OperationResult
    {
        let until = endedUntil(now)
        let result = try await storeCall(.rotate, key: from, logger: logger) {
            try await $0.rotate(from: from, to: to, applying: changes, now: now, rememberEndedUntil: until)
        }
        if case .applied(let rotated) = result { events.emit(.rotated, rotated.key, userID: rotated.userID, at: now) }
        return OperationResult(result)
    }

    @inline(never)
    private func performSignIn(_ signIn: SessionSignIn, now: Date, logger: Logger) async throws -> OperationResult {
        let result = try await storeCall(.signIn, key: signIn.newKey, logger: logger) {
            try await Self.signIn(signIn, on: $0, now: now)
        }
        guard case .authenticated(let signedIn, let evicted) = result else { return .missing }
        events.emit(.authenticated, signedIn.key, userID: signIn.userID, at: now)
        for session in evicted { events.emit(.evicted, session.key, userID: session.userID, at: now) }
        return .written(signedIn)
    }

    @inline(never)
    private func delete(_ key: SessionStorageKey, userID: String?, now: Date, logger: Logger) async throws -> OperationResult {
        var userID = userID
        // The event names the user; look the session up for it only when someone listens.
        if userID == nil, events.hasSubscribers {
            userID = try? await storeCall(.load, key: key, logger: logger) { try await $0.load(key, now: now) }?.userID
        }
        let until = endedUntil(now)
        try await storeCall(.delete, key: key, logger: logger) { try await $0.delete(key, now: now, rememberEndedUntil: until) }
        logger.debug("session destroyed", metadata: ["sessionkit.session": "\(key.shortHash)"])
        events.emit(.destroyed, key, userID: userID, at: now)
        return .written(nil)
    }

    /// A plain write (`operation` is `.apply` or `.touch`), based on the session as the
    /// request read it when it did, so that the store need not send its values back.
    private func apply(
        _ changes: SessionChanges, to key: SessionStorageKey, basedOn read: StoredSession?, ifVersion version: UInt64?,
        as operation: SessionStoreCall, now: Date, logger: Logger
    ) async throws -> SessionApplyResult {
        try await storeCall(
            operation, key: key, logger: logger,
            timed: { try await $0.apply(changes, to: key, basedOn: read, ifVersion: version, now: now, within: $1) }
        ) {
            if let read {
                try await $0.apply(changes, to: key, basedOn: read, ifVersion: version, now: now)
            } else {
                try await $0.apply(changes, to: key, ifVersion: version, now: now)
            }
        }
    }

    /// A sign-in: the store's own atomic step when it keeps a per-user index (the limit
    /// needs one); otherwise a rotation or insert that records the user.
    private static func signIn(_ signIn: SessionSignIn, on store: any SessionStore, now: Date) async throws -> SessionSignInResult {
        if let indexed = store as? any UserIndexedSessionStore {
            return try await indexed.signIn(signIn, now: now)
        }
        switch signIn.source {
        case .rotate(let from, let changes):
            let result = try await store.rotate(
                from: from, to: signIn.newKey, applying: changes, now: now, rememberEndedUntil: signIn.rememberEndedUntil)
            guard case .applied(let session) = result else { return .missing }
            return .authenticated(session, evicted: [])
        case .insert(let session):
            try await store.insert(session, now: now)
            return .authenticated(session, evicted: [])
        }
    }

    /// Until when a token ended now is remembered as ended.
    package func endedUntil(_ now: Date) -> Date { now + configuration.endedTokenGrace.timeInterval }

    /// A call to the store's per-user index.
    private func indexCall<Value: Sendable>(
        _ operation: SessionStoreCall,
        _ body: @escaping @Sendable (any UserIndexedSessionStore) async throws -> Value
    ) async throws -> Value {
        if sealed != nil { throw Self.unsupportedWhenSealed("a list of a user's sessions") }
        guard let indexed = store as? any UserIndexedSessionStore else { throw Self.unsupported("a per-user index") }
        return try await storeCall(operation, logger: logger) { _ in try await body(indexed) }
    }

    static func unsupportedWhenSealed(_ what: String) -> SessionError {
        SessionError(code: .unsupportedByStore, message: "sessions sealed in cookies keep no server state for \(what)")
    }

    private static func unsupported(_ what: String) -> SessionError {
        SessionError(code: .unsupportedByStore, message: "the session store does not keep \(what)")
    }

    /// A call a ``TimeLimitedSessionStore`` keeps within the limit it is given.
    typealias TimedCall<Value> = @Sendable (any TimeLimitedSessionStore, Duration) async throws -> Value

    /// One store call, within the time limit: none for a store that answers in-process, the
    /// store's own for a ``TimeLimitedSessionStore`` when the call has a `timed` form, and
    /// otherwise the manager's ``Deadline``, which costs a task per call.
    private func call<Value: Sendable>(
        timed: TimedCall<Value>?, _ body: @escaping @Sendable (any SessionStore) async throws -> Value
    ) async throws -> Value {
        let store = self.store
        if callsInProcess { return try await body(store) }
        if let timed, let timeLimited { return try await timed(timeLimited, configuration.storeTimeout) }
        return try await deadline.run { try await body(store) }
    }

    /// One store round trip, within ``SessionConfiguration/storeTimeout``, with every
    /// failure turned into a ``SessionError``. Measured and traced as `operation`
    /// (``SessionTelemetry``); `key` names the session for a span that carries its handle.
    /// `timed` is the same call on a ``TimeLimitedSessionStore``, made instead when the store is one.
    @inline(never)
    func storeCall<Value: Sendable>(
        _ operation: SessionStoreCall,
        key: SessionStorageKey? = nil,
        logger: Logger,
        timed: TimedCall<Value>? = nil,
        _ body: @escaping @Sendable (any SessionStore) async throws -> Value
    ) async throws -> Value {
        do {
            // With nothing bootstrapped, the call is made as if there were no instruments.
            guard instruments.isOn else { return try await call(timed: timed, body) }
            return try await instruments.measure(operation, key: key) { try await call(timed: timed, body) }
        } catch {
            throw storeFailure(error, in: operation, logger: logger)
        }
    }

    /// The ``SessionError`` a store call that threw `error` answers, counted and logged.
    @inline(never)
    private func storeFailure(_ error: any Error, in operation: SessionStoreCall, logger: Logger) -> SessionError {
        switch error {
        case let error as SessionStoreError where error.code == .tooLarge:
            logger.debug(
                "session store refused a value",
                metadata: [
                    "sessionkit.operation": "\(operation.rawValue)", "sessionkit.store": "\(instruments.storeKind)", "error": "\(error)",
                ])
            return SessionError(code: .tooLarge, message: error.message)
        case let error as SessionStoreError where error.code == .sessionLimitReached:
            instruments.countSignInRefused()
            logger.debug(
                "sign-in refused at the session limit",
                metadata: ["sessionkit.operation": "\(operation.rawValue)", "sessionkit.store": "\(instruments.storeKind)"])
            return SessionError(code: .sessionLimitReached, message: "you are signed in on too many devices; sign out of one first")
        case let error where error is Deadline.Exceeded || (error as? SessionStoreError)?.code == .timedOut:
            instruments.count(.timeout, in: operation)
            logger.warning(
                "session store did not answer in time",
                metadata: ["sessionkit.operation": "\(operation.rawValue)", "sessionkit.store": "\(instruments.storeKind)"])
            return SessionError(code: .storeUnavailable, message: "the session store did not answer in time")
        default:
            instruments.count(.failure, in: operation)
            logger.warning(
                "session store failed",
                metadata: [
                    "sessionkit.operation": "\(operation.rawValue)", "sessionkit.store": "\(instruments.storeKind)", "error": "\(error)",
                ])
            return SessionError(code: .storeUnavailable, message: "the session store is unavailable")
        }
    }
}

extension SessionManager.OperationResult {
    init(_ result: SessionApplyResult) {
        switch result {
        case .applied(let session): self = .written(session)
        case .missing: self = .missing
        case .conflict: self = .conflict
        }
    }
}

extension SessionCommitOutcome {
    /// A commit that failed with `error`: the error, and no field for the response.
    fileprivate mutating func fail(_ error: any Error) {
        self.error = error as? SessionError ?? SessionError(code: .storeUnavailable, message: "\(error)")
        headerFields = []
    }
}
