import Foundation
import Logging

/// The sealed-cookie side of the manager: the session is the one the client holds, every
/// write makes the record the response seals, and the revocations (when configured) are
/// the only server state.
extension SessionManager {
    /// The client-held session `held` as the request may see it: absent when it does not
    /// name `key` or has expired; ended when revoked or signed out (within the ended-token
    /// grace: a write then answers 409; afterwards it is simply absent and a write starts
    /// anew).
    func lookUpSealed(_ key: SessionStorageKey, held: StoredSession?, now: Date, logger: Logger) async throws -> SessionLookup {
        guard let held, held.key == key, !held.isExpired(at: now) else {
            logger.debug("sealed session has expired; treated as no session")
            return .absent(key)
        }
        guard let revocations = sealed?.revocations else { return .live(held) }
        guard
            let endedAt = try await storeCall(
                .revocationCheck, key: key, logger: logger, { _ in try await revocations.endedAt(held, now: now) })
        else {
            return .live(held)
        }
        logger.debug("sealed session was ended; treated as no session")
        return endedAt + configuration.endedTokenGrace.timeInterval > now ? .ended(key) : .absent(key)
    }

    /// `operation` on the client-held session `held`: the record to seal, after the size
    /// guard and, with revocations, a check that the session was not ended meanwhile and
    /// the revocation of the key it leaves.
    func performSealed(
        _ operation: SessionOperation,
        held: StoredSession?,
        sealed: Sealed,
        now: Date,
        logger: Logger
    ) async throws -> OperationResult {
        /// A new session as sealed: its values encoded once (for the size guard and the
        /// seal), and within the cookie's size.
        func sealable(_ session: StoredSession) throws -> StoredSession {
            var session = session
            session.values = try session.values.mapValues { try $0.withEncodedJSON() }
            try sealed.carrier.checkSize(of: session, configuration: configuration, now: now)
            return session
        }
        /// `base` with `changes`, as a store applies them (the version one higher), the
        /// changed values encoded once, within the cookie's size.
        func written(_ base: StoredSession, _ changes: SessionChanges, key: SessionStorageKey? = nil) throws -> StoredSession {
            var next = base
            if let key { next.key = key }
            var changes = changes
            changes.values = try changes.values.mapValues { try $0?.withEncodedJSON() }
            next.apply(changes)
            try sealed.carrier.checkSize(of: next, configuration: configuration, now: now)
            return next
        }
        /// Whether the session the request started from was ended since it was looked up.
        func endedMeanwhile(_ session: StoredSession) async throws -> Bool {
            guard let revocations = sealed.revocations else { return false }
            return try await storeCall(.revocationCheck, key: session.key, logger: logger) { _ in
                try await revocations.endedAt(session, now: now)
            } != nil
        }
        func revoke(_ session: StoredSession) async throws {
            guard let revocations = sealed.revocations else { return }
            try await storeCall(.revoke, key: session.key, logger: logger) { _ in
                try await revocations.revoke(session.key, until: session.absoluteDeadline, now: now)
            }
        }
        /// `base` under `key`, its old key revoked. A rotation that keeps the user (not a
        /// sign-in, which starts a new sign-in time) carries the exception of a sign-out along.
        func moved(_ base: StoredSession, to key: SessionStorageKey, _ changes: SessionChanges) async throws -> StoredSession? {
            guard base.isExpired(at: now) == false, try await !endedMeanwhile(base) else { return nil }
            let next = try written(base, changes, key: key)
            if let revocations = sealed.revocations, changes.authentication == nil {
                try await storeCall(.revoke, key: key, logger: logger) { _ in
                    try await revocations.keepAfterRotation(of: base, to: key, now: now)
                }
            }
            try await revoke(base)
            return next
        }

        switch operation {
        case .insert(let session):
            let next = try sealable(session)
            events.emit(.created, next.key, userID: next.userID, at: now)
            return .written(next)
        case .apply(let changes, let key, let version):
            guard let held, held.key == key else { return .missing }
            if let version, version != held.version { return .conflict }
            guard try await !endedMeanwhile(held) else { return .missing }
            return .written(try written(held, changes))
        case .touch(let changes, let key):
            // A refresh that finds the session ended sets no cookie: the client may already
            // hold its successor.
            guard let held, held.key == key, (try? await endedMeanwhile(held)) == false else { return .written(nil) }
            return .written(try? written(held, changes))
        case .rotate(let from, let to, let changes):
            guard let held, held.key == from, let next = try await moved(held, to: to, changes) else { return .missing }
            events.emit(.rotated, next.key, userID: next.userID, at: now)
            return .written(next)
        case .signIn(let signIn):
            let next: StoredSession
            switch signIn.source {
            case .rotate(let from, let changes):
                guard let held, held.key == from, let moved = try await moved(held, to: signIn.newKey, changes) else { return .missing }
                next = moved
            case .insert(let session):
                next = try sealable(session)
            }
            events.emit(.authenticated, next.key, userID: signIn.userID, at: now)
            return .written(next)
        case .delete(let key, let userID):
            if let held, held.key == key { try await revoke(held) }
            logger.debug("session destroyed", metadata: ["sessionkit.session": "\(key.shortHash)"])
            events.emit(.destroyed, key, userID: userID ?? held?.userID, at: now)
            return .written(nil)
        }
    }

    /// Ends every sealed session of `userID` signed in before now, but the one whose handle
    /// is `keptHandle`.
    func signOutSealed(userID: String, except keptHandle: String?) async throws {
        guard let revocations = sealed?.revocations else {
            throw Self.unsupportedWhenSealed("signing a user out elsewhere without a revocation store")
        }
        let now = now()
        // Sessions signed in before now end by then, whatever their kind.
        let until = now + max(configuration.absoluteLifetime(persistent: true), configuration.absoluteLifetime(persistent: false))
        try await storeCall(.signOut, logger: logger) { _ in
            try await revocations.signOut(userID: userID, before: now, except: keptHandle, until: until, now: now)
        }
        logger.debug("sealed sessions of a user signed out")
    }
}
