import Foundation

/// What an adapter must do to the response once the session is committed.
public struct SessionCommitOutcome: Sendable {
    /// Header fields the carrier needs on the response: `Set-Cookie` values to append
    /// (never replacing other cookies), others to set.
    public var headerFields: [SessionHeaderField]
    /// When set, the response must become this error instead of the handler's.
    public var error: SessionError?
    /// Whether the request looked a session up, so the response depends on who asked.
    public var sessionRead: Bool

    /// An outcome as given.
    public init(headerFields: [SessionHeaderField] = [], error: SessionError? = nil, sessionRead: Bool = false) {
        self.headerFields = headerFields
        self.error = error
        self.sessionRead = sessionRead
    }

    /// The `Cache-Control` value the response needs, given the one the handler set, or
    /// `nil` to leave it as it is. A response that carries a credential is `no-store`; one
    /// that read a session is at least `private`.
    public func cacheControl(merging existing: String?) -> String? {
        if !headerFields.isEmpty { return "no-store" }
        guard sessionRead else { return nil }
        guard let existing, !existing.isEmpty else { return "private" }
        let directives = existing.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let lowered = directives.map { $0.lowercased() }
        if lowered.contains("private") || lowered.contains("no-store") { return nil }
        let kept = directives.filter { $0.lowercased() != "public" && !$0.lowercased().hasPrefix("s-maxage") }
        return (["private"] + kept).joined(separator: ", ")
    }
}
