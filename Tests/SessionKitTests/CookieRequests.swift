import Logging
import SessionKit

/// A request of nothing but `Cookie` header fields.
private struct CookieFields: SessionCarrierRequest {
    let values: [String]
    func headerValues(_ name: SessionHeaderName) -> [String] { name == .cookie ? values : [] }
}

extension SessionManager {
    /// The session of a request that carries these `Cookie` fields, as the middleware makes it.
    func session(cookieHeaders: [String], client: SessionClient, logger: Logger) -> RequestSession {
        // The cookie carrier alone never finds credentials through two carriers.
        try! session(for: CookieFields(values: cookieHeaders), carriers: [.cookie], client: client, logger: logger)
    }
}

extension SessionCommitOutcome {
    /// The `Set-Cookie` field the response carries, if any.
    var setCookie: String? { headerFields.first { $0.name == .setCookie }?.value }

    /// The `name=value` pair of ``setCookie``: what the browser sends back.
    var cookiePair: String? { setCookie.map { String($0.split(separator: ";")[0]) } }
}
