import Foundation

/// A failure a handler or the commit after it can meet, with the HTTP status it answers.
///
/// Adapters render it as `{"error": identifier, "message": message}` with ``status``.
public struct SessionError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure: it decides the HTTP status and the JSON `error` field.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case storeUnavailable = "store_unavailable"
            case sessionChanged = "session_changed"
            case updateConflict = "update_conflict"
            case tooLarge = "session_too_large"
            case committed = "session_committed"
            case notAttached = "session_not_attached"
            case sessionLimitReached = "session_limit_reached"
            case ambiguousCredentials = "ambiguous_credentials"
            case unsupportedForBearer = "unsupported_for_bearer"
            case unsupportedByStore = "unsupported_by_store"
            case crossOriginRequest = "cross_origin_request"
            case csrfTokenInvalid = "csrf_token_invalid"
            case notAuthenticated = "not_authenticated"
            case deviceBindingRequired = "device_binding_required"
            case misconfigured = "session_misconfigured"
        }

        private let base: Base

        /// The store failed or did not answer in time. 503.
        public static let storeUnavailable = Code(base: .storeUnavailable)
        /// The session was ended or rotated by another request (a logout or login) while
        /// this one changed it; the change was not written. 409.
        public static let sessionChanged = Code(base: .sessionChanged)
        /// `update` could not land its compare-and-set within the configured attempts. 409.
        public static let updateConflict = Code(base: .updateConflict)
        /// A value or the session passes the store's size limits. 413.
        public static let tooLarge = Code(base: .tooLarge)
        /// The session was used after its response was committed. 500: a programming error.
        public static let committed = Code(base: .committed)
        /// A sign-in was refused because the user holds as many sessions as allowed. 403.
        public static let sessionLimitReached = Code(base: .sessionLimitReached)
        /// The request presented credentials through two carriers (a session cookie and a
        /// bearer token), so which session it means is unclear. 400.
        public static let ambiguousCredentials = Code(base: .ambiguousCredentials)
        /// The request's carrier cannot deliver a new token (a bearer token), so it cannot
        /// sign in, rotate or start a session. 400.
        public static let unsupportedForBearer = Code(base: .unsupportedForBearer)
        /// The store does not keep what the operation needs (a per-user index). 501.
        public static let unsupportedByStore = Code(base: .unsupportedByStore)
        /// A browser sent a state-changing request from another origin
        /// (``CrossOriginProtection``). 403.
        public static let crossOriginRequest = Code(base: .crossOriginRequest)
        /// A form post of a request with a session carried no valid CSRF token of that
        /// session. 403.
        public static let csrfTokenInvalid = Code(base: .csrfTokenInvalid)
        /// The operation needs a signed-in user and there is none. 401.
        public static let notAuthenticated = Code(base: .notAuthenticated)
        /// The session is bound to a device key (DBSC) and the request did not carry the
        /// short-lived cookie that proves it; a browser holding the key refreshes that cookie
        /// first. 401.
        public static let deviceBindingRequired = Code(base: .deviceBindingRequired)
        /// The route's carriers do not fit its manager (a token carrier on a sealed manager,
        /// or the reverse). 500: a programming error.
        public static let misconfigured = Code(base: .misconfigured)
        /// The route has no session middleware in front of it. 500: a programming error.
        public static let notAttached = Code(base: .notAttached)

        /// The machine-readable name sent in error bodies (`session_changed`).
        public var identifier: String { base.rawValue }

        /// The code as it appears in JSON error bodies.
        public var description: String { base.rawValue }
    }

    /// What kind of failure.
    public var code: Code
    /// What happened, in words a client may show (never a token or a value).
    public var message: String

    /// An error of `code`, saying `message`.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The HTTP status this error answers.
    public var status: Int {
        switch code {
        case .storeUnavailable: 503
        case .sessionChanged, .updateConflict: 409
        case .tooLarge: 413
        case .sessionLimitReached, .crossOriginRequest, .csrfTokenInvalid: 403
        case .ambiguousCredentials, .unsupportedForBearer: 400
        case .unsupportedByStore: 501
        case .notAuthenticated, .deviceBindingRequired: 401
        default: 500
        }
    }

    /// The code and the message.
    public var description: String { "SessionError(\(code)): \(message)" }

    /// The body every adapter answers with, `{"error": identifier, "message": message}`
    /// (UTF-8 JSON, in that order), so that the same failure reads the same bytes on every
    /// framework.
    public var jsonBody: [UInt8] { Self.jsonBody(error: code.identifier, message: message) }

    /// `{"error": error, "message": message}` as ``jsonBody`` writes it, for errors of other
    /// parts of the package (the device-binding endpoints) that must read the same.
    package static func jsonBody(error: String, message: String) -> [UInt8] {
        let encoder = JSONEncoder()
        // Foundation on Linux orders keys differently from run to run unless asked.
        encoder.outputFormatting = .sortedKeys
        // Two strings always encode; the fallback only satisfies the type checker.
        return (try? Array(encoder.encode(JSONBody(error: error, message: message)))) ?? Array(#"{"error":"internal"}"#.utf8)
    }

    /// The `Content-Type` of ``jsonBody``.
    public static let jsonContentType = "application/json; charset=utf-8"

    private struct JSONBody: Encodable {
        var error: String
        var message: String
    }

    static let sessionChanged = SessionError(
        code: .sessionChanged,
        message: "the session was ended or replaced by another request"
    )

    static let ambiguousCredentials = SessionError(
        code: .ambiguousCredentials,
        message: "the request carries both a session cookie and a bearer token; send one"
    )

    static let unsupportedForBearer = SessionError(
        code: .unsupportedForBearer,
        message: "a request carried by a bearer token cannot sign in, rotate or start a session; ask for a new token instead"
    )

    package static let crossOriginRequest = SessionError(
        code: .crossOriginRequest,
        message: "this request came from another site; it was not carried out"
    )

    package static let csrfTokenInvalid = SessionError(
        code: .csrfTokenInvalid,
        message: "the form's security token is missing or out of date; reload the page and try again"
    )

    static let notAuthenticated = SessionError(code: .notAuthenticated, message: "no user is signed in on this session")

    package static let deviceBindingRequired = SessionError(
        code: .deviceBindingRequired,
        message: "this session is bound to a device, and the request did not prove it came from that device"
    )

    static func misconfiguredCarrier(_ kind: SessionCarrierKind, sealed: Bool) -> SessionError {
        SessionError(
            code: .misconfigured,
            message: sealed
                ? "the \(kind) carrier needs a session store; a sealed manager carries sessions in its own cookie (manager.carriers)"
                : "the \(kind) carrier holds sessions itself; only a sealed manager uses it"
        )
    }

    static let notAttached = SessionError(
        code: .notAttached,
        message: "no session middleware runs in front of this route"
    )

    static let committed = SessionError(
        code: .committed,
        message: "the session was used after its response was committed"
    )
}
