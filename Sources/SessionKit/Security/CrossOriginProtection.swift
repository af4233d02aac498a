import Foundation

/// Refuses state-changing requests that a browser sent from another origin, so that a page
/// elsewhere cannot act with the user's cookie (cross-site request forgery, login CSRF).
///
/// Modelled on Go 1.25's `net/http.CrossOriginProtection`, it decides from the headers
/// browsers add themselves, in this order:
/// 1. `GET`, `HEAD` and `OPTIONS` pass: they must not change state.
/// 2. A path in ``exemptPaths`` passes (endpoints authenticated by a proof of their own).
/// 3. An `Origin` in ``trustedOrigins`` passes.
/// 4. `Sec-Fetch-Site: same-origin` or `none` (typed in, a bookmark) passes; `same-site`
///    passes only with ``allowSameSite``; `cross-site` and anything else is refused.
/// 5. Without `Sec-Fetch-Site` (older browsers), an `Origin` whose host and port differ from
///    the request's `Host` is refused (so is `Origin: null`).
/// 6. A request with neither header passes: it comes from a client that is not a browser
///    (curl, an API client, a test), which carries no ambient credential to abuse.
///
/// Requests carried by a bearer token are exempt: a browser never attaches one on its own.
/// The session middleware applies this before the handler and before any session is read,
/// so a refused request stores nothing.
public struct CrossOriginProtection: Sendable, Hashable {
    /// Origins trusted to send state-changing requests (`https://admin.example.com`),
    /// compared without regard to case. The default is none.
    public var trustedOrigins: Set<String> = [] {
        didSet { normalizedOrigins = Set(trustedOrigins.map { $0.lowercased() }) }
    }
    /// Whether requests from the same site but another origin (`Sec-Fetch-Site:
    /// same-site`, a sibling subdomain) pass. The default is `false`.
    public var allowSameSite = false
    /// Request paths that skip the check because they authenticate each request by a proof
    /// of their own. The default is none.
    public var exemptPaths: Set<String> = []

    private var normalizedOrigins: Set<String> = []

    /// The protection with the defaults: no trusted origins, no exempt paths.
    public init() {}

    /// Whether a request passes.
    /// - Parameters:
    ///   - method: The request method, upper-case.
    ///   - path: The request's path, for ``exemptPaths``.
    ///   - origin: The `Origin` header, if any.
    ///   - secFetchSite: The `Sec-Fetch-Site` header, if any.
    ///   - host: The request's `Host` (its authority: host and port).
    public func allows(method: String, path: String, origin: String?, secFetchSite: String?, host: String?) -> Bool {
        if Self.isSafe(method: method) { return true }
        if exemptPaths.contains(path) { return true }
        if let origin, normalizedOrigins.contains(origin.lowercased()) { return true }
        if let secFetchSite {
            switch secFetchSite.lowercased() {
            case "same-origin", "none": return true
            case "same-site": return allowSameSite
            default: return false
            }
        }
        guard let origin else { return true }
        guard let authority = Self.authority(ofOrigin: origin), let host else { return false }
        return authority == host.lowercased()
    }

    /// Whether `method` (upper-case) must not change state: `GET`, `HEAD` and `OPTIONS`. The
    /// one rule the cross-origin check and form-token checks share, so adapters can skip
    /// reading headers for the requests (most of them) that pass anyway.
    public static func isSafe(method: String) -> Bool {
        method == "GET" || method == "HEAD" || method == "OPTIONS"
    }

    /// The host and port of a serialized origin (`scheme://host[:port]`), lowercase; `nil`
    /// for `null` or anything malformed.
    static func authority(ofOrigin origin: String) -> String? {
        guard let separator = origin.range(of: "://") else { return nil }
        let authority = origin[separator.upperBound...]
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else { return nil }
        return authority.lowercased()
    }
}
