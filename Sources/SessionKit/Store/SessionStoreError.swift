/// A failure reported by a ``SessionStore``.
public struct SessionStoreError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case duplicateKey
            case tooLarge
            case unavailable
            case corrupt
            case sessionLimitReached
            case unsupported
            case timedOut
        }

        private let base: Base

        /// ``SessionStore/insert(_:now:)`` found a session under the key already.
        public static let duplicateKey = Code(base: .duplicateKey)
        /// A value or the whole session passes the store's ``SessionLimits``.
        public static let tooLarge = Code(base: .tooLarge)
        /// The store's backend could not be reached or failed.
        public static let unavailable = Code(base: .unavailable)
        /// The store holds a record it cannot read.
        public static let corrupt = Code(base: .corrupt)
        /// A sign-in was refused: the user holds as many sessions as the limit allows.
        public static let sessionLimitReached = Code(base: .sessionLimitReached)
        /// The store does not adopt the protocol the operation needs (a per-user index,
        /// administration).
        public static let unsupported = Code(base: .unsupported)
        /// The store's backend did not answer in time: within the limit a
        /// ``TimeLimitedSessionStore`` call was given, or the store's own timeout.
        public static let timedOut = Code(base: .timedOut)

        /// The code, for logs.
        public var description: String { base.rawValue }
    }

    /// What kind of failure.
    public var code: Code
    /// What happened, for logs (never a token or a value).
    public var message: String

    /// An error of `code`, saying `message`.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The code and the message.
    public var description: String { "SessionStoreError(\(code)): \(message)" }
}
