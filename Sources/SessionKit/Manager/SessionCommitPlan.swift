package import Foundation

/// What a request asked of its session through the value API, as recorded until commit.
package struct SessionRequestChanges: Sendable {
    /// Values to set (`.some`) or remove (`.some(nil)`), by key name.
    package var values: [String: SessionValue?] = [:]
    /// "Remember me" switched on or off.
    package var rememberMe: Bool?
    package var rotate = false
    package var destroy = false

    package init(values: [String: SessionValue?] = [:], rememberMe: Bool? = nil, rotate: Bool = false, destroy: Bool = false) {
        self.values = values
        self.rememberMe = rememberMe
        self.rotate = rotate
        self.destroy = destroy
    }

    /// Whether committing needs the stored session: something is set, removed, rotated or
    /// switched.
    package var writes: Bool { !values.isEmpty || rotate || rememberMe != nil }
}

/// What a request knows of its stored session.
package enum SessionLookup: Sendable {
    /// The client presented no token.
    case noToken
    /// The client presented this key's token; it has not been looked up.
    case unread(SessionStorageKey)
    /// Nothing live is stored under the presented key: unknown, or expired.
    case absent(SessionStorageKey)
    /// The session under the presented key was ended (by a sign-in, rotation or logout)
    /// while this request ran, or so recently that the client may already hold its
    /// successor. A write here would replace that successor's cookie, so it is refused.
    case ended(SessionStorageKey)
    /// The session as stored.
    case live(StoredSession)

    package var session: StoredSession? {
        if case .live(let session) = self { session } else { nil }
    }
}

/// One store operation, as a plan names it and the manager runs it.
package enum SessionOperation: Sendable {
    case insert(StoredSession)
    /// Per-key changes; with a version, a compare-and-set.
    case apply(SessionChanges, to: SessionStorageKey, ifVersion: UInt64?)
    /// A refresh of the idle deadline that the response does not depend on: a failure is
    /// logged, not answered.
    case touch(SessionChanges, of: SessionStorageKey)
    case rotate(from: SessionStorageKey, to: SessionStorageKey, applying: SessionChanges)
    case signIn(SessionSignIn)
    /// Ends a session; the user, when known, names it in the `destroyed` event.
    case delete(SessionStorageKey, userID: String?)
}

/// The one decision after a handler: which single store operation commits what the request
/// did, and what the response must tell the client. A pure function of what the request
/// did, what it loaded, the carrier, the configuration and `now`; the manager runs it.
///
/// The rules, in order:
/// - destroyed: delete the presented session, and clear the client's token;
/// - a write needs the stored session: a request that has not loaded it looks it up first
///   (``Step/lookUp(_:)``), then is planned again;
/// - no live session and values to set: insert a new session under a new token (refused
///   when the carrier cannot deliver one);
/// - the presented session was ended meanwhile and the request writes: refused with
///   `session_changed` and no new token, so the client keeps the successor it may hold;
/// - live and rotated: move it to a new token, with the changes;
/// - live and changed: apply the per-key changes (no version: changes to other keys merge);
/// - live and unchanged: refresh the idle deadline once ``SessionConfiguration/touchFraction``
///   of the idle window has passed, otherwise write nothing. A change refreshes it on the
///   same terms (and whenever remember-me changes).
///
/// A token made during the request (a sign-in, a first `update`) or a change of
/// remember-me is delivered through the carrier after the write; so is every write of a
/// session the carrier holds (a sealed cookie).
package struct SessionCommitPlan: Sendable {
    package enum Step: Sendable {
        /// Nothing to write.
        case done
        /// Load the presented session, then plan again.
        case lookUp(SessionStorageKey)
        case write(SessionOperation)
        /// Write nothing and answer this error.
        case refuse(SessionError)
    }

    package enum Effect: Sendable {
        /// Deliver this token for the session as written (or as loaded, when nothing was).
        case deliver(SessionToken)
        case clear
    }

    package var step: Step
    package var effect: Effect?

    package init(_ step: Step, effect: Effect? = nil) {
        self.step = step
        self.effect = effect
    }

    /// The plan after a handler.
    /// - Parameters:
    ///   - token: The token the client holds, or the one this request made.
    ///   - issued: Whether `token` was made by this request and so must be delivered.
    ///   - holdsSession: Whether the carrier holds the session itself (a sealed cookie), so
    ///     every write is delivered.
    ///   - newToken: Makes a token for a new or rotated session.
    package static func commit(
        _ request: SessionRequestChanges,
        token: SessionToken?,
        issued: Bool,
        lookup: SessionLookup,
        deliversNewTokens: Bool,
        holdsSession: Bool = false,
        client: () -> SessionClient,
        configuration: SessionConfiguration,
        now: Date,
        newToken: () -> SessionToken
    ) -> SessionCommitPlan {
        if request.destroy {
            guard let key = token?.storageKey else { return SessionCommitPlan(.done) }
            return SessionCommitPlan(.write(.delete(key, userID: lookup.session?.userID)), effect: .clear)
        }
        switch lookup {
        case .unread(let key):
            return request.writes ? SessionCommitPlan(.lookUp(key)) : SessionCommitPlan(.done)
        case .noToken, .absent:
            let values = request.values.compactMapValues { $0 }
            guard !values.isEmpty else { return SessionCommitPlan(.done) }
            guard deliversNewTokens else { return SessionCommitPlan(.refuse(.unsupportedForBearer)) }
            let fresh = newToken()
            let session = configuration.newSession(
                key: fresh.storageKey,
                values: values,
                persistent: request.rememberMe ?? false,
                client: client(),
                now: now
            )
            return SessionCommitPlan(.write(.insert(session)), effect: .deliver(fresh))
        case .ended:
            return SessionCommitPlan(request.writes ? .refuse(.sessionChanged) : .done)
        case .live(let existing):
            var changes = SessionChanges(values: request.values)
            if let persistent = request.rememberMe {
                changes.isPersistent = persistent
                let start = existing.authenticatedAt ?? existing.createdAt
                changes.absoluteDeadline = start + configuration.absoluteLifetime(persistent: persistent)
            }
            let persistent = changes.isPersistent ?? existing.isPersistent
            let keep: Effect? = if let token, issued || request.rememberMe != nil { .deliver(token) } else { nil }
            // A cookie that holds the session is the session: every write is delivered.
            let keepWritten: Effect? = if holdsSession, let token { .deliver(token) } else { keep }
            if request.rotate {
                guard deliversNewTokens else { return SessionCommitPlan(.refuse(.unsupportedForBearer)) }
                configuration.touch(&changes, persistent: persistent, now: now)
                let fresh = newToken()
                return SessionCommitPlan(
                    .write(.rotate(from: existing.key, to: fresh.storageKey, applying: changes)),
                    effect: .deliver(fresh)
                )
            }
            // A change refreshes the deadlines as a read does, once a touch is due (or when
            // remember-me changes the idle timeout): a change that leaves them alone leaves
            // the store's expiry index alone too.
            let touchIsDue = configuration.touchIsDue(existing, now: now)
            if !changes.isEmpty {
                if touchIsDue || request.rememberMe != nil { configuration.touch(&changes, persistent: persistent, now: now) }
                return SessionCommitPlan(.write(.apply(changes, to: existing.key, ifVersion: nil)), effect: keepWritten)
            }
            if touchIsDue {
                configuration.touch(&changes, persistent: persistent, now: now)
                return SessionCommitPlan(.write(.touch(changes, of: existing.key)), effect: keepWritten)
            }
            return SessionCommitPlan(.done, effect: keep)
        }
    }

    /// The sign-in of `userID` on a request whose session is `lookup` (looked up already).
    ///
    /// An anonymous session, or one of the same user, keeps its values and moves to the new
    /// token; a session of another user is replaced by one holding only what this request
    /// set (its values removed, its remember-me not inherited). Remember-me is what this
    /// sign-in asks for. Without a live session, a new one is stored. The absolute lifetime
    /// starts again now. The session's CSRF secret is dropped, so forms rendered before the
    /// sign-in no longer post.
    package static func signIn(
        userID: String,
        rememberMe: Bool,
        lookup: SessionLookup,
        pending: [String: SessionValue?],
        client: SessionClient,
        configuration: SessionConfiguration,
        now: Date,
        newToken: SessionToken
    ) -> SessionSignIn {
        var changes = SessionChanges(values: pending, isPersistent: rememberMe)
        changes.authentication = .init(userID: userID, authenticatedAt: now, client: client)
        changes.absoluteDeadline = now + configuration.absoluteLifetime(persistent: rememberMe)
        configuration.touch(&changes, persistent: rememberMe, now: now)
        let source: SessionSignIn.Source
        // A form token from before the sign-in must not work after it; signing in is a proof
        // of identity.
        changes.values[RequestSession.csrfValueName] = .some(nil)
        changes.values[RequestSession.lastProofValueName] = SessionValue(now)
        if let existing = lookup.session {
            if let previous = existing.userID, previous != userID {
                for name in existing.values.keys where changes.values[name] == nil { changes.values[name] = .some(nil) }
            }
            source = .rotate(from: existing.key, applying: changes)
        } else {
            var fresh = configuration.newSession(key: newToken.storageKey, values: [:], persistent: rememberMe, client: client, now: now)
            fresh.apply(changes)
            fresh.version = 1
            source = .insert(fresh)
        }
        return SessionSignIn(
            source: source,
            newKey: newToken.storageKey,
            userID: userID,
            limit: configuration.maxSessionsPerUser,
            rememberEndedUntil: now + configuration.endedTokenGrace.timeInterval
        )
    }

    /// The compare-and-set write of `update`: `value` under `name` in the session as freshly
    /// loaded, with activity recorded when a touch is due, as a change at commit records it.
    package static func update(
        _ value: SessionValue?,
        named name: String,
        in fresh: StoredSession,
        configuration: SessionConfiguration,
        now: Date
    ) -> SessionOperation {
        var changes = SessionChanges(values: [name: value])
        if configuration.touchIsDue(fresh, now: now) { configuration.touch(&changes, persistent: fresh.isPersistent, now: now) }
        return .apply(changes, to: fresh.key, ifVersion: fresh.version)
    }
}
