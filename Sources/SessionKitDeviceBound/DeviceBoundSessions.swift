#if DeviceBound
public import Foundation
public import Logging
@_spi(Parsers) public import SessionKit

/// Device-bound sessions for a `SessionManager`: what a bound session's request must carry
/// (the manager's `deviceGuard`), the registration header a sign-in sends, and the
/// registration and refresh endpoints, independent of the web framework (the adapters route
/// them).
///
/// How a session becomes bound and stays so:
/// 1. After a sign-in, the response carries ``registrationHeader(for:)``: the algorithms
///    offered, ``registrationPath`` and a challenge for that session.
/// 2. The browser makes a key pair and posts a proof signed with it to the registration
///    endpoint (``register(_:session:)``): the key and a new session identifier are stored
///    with the session, and a bound cookie (``boundCookie``, ``DeviceBinding/boundCookieLifetime``)
///    is set.
/// 3. From then on every request that uses the session must carry a valid bound cookie,
///    or it is refused (401 `device_binding_required`), whatever else it carries.
/// 4. Before the bound cookie expires, the browser asks ``refreshPath`` (``refresh(_:session:)``),
///    is answered 403 with a fresh challenge, signs it, and gets a new bound cookie. Only a
///    proof by the registered key over an unanswered, unexpired challenge does that.
///
/// A session never falls back to unbound; ending it ends the binding (a refresh then
/// answers `{"continue": false}`). Both endpoints prove themselves by signatures and are
/// exempt from cross-origin protection (``endpointPaths``).
public struct DeviceBoundSessions: SessionDeviceGuard {
    /// The secrets and lifetimes of challenges and bound cookies.
    public let binding: DeviceBinding
    /// Where browsers post registration proofs.
    public let registrationPath: String
    /// Where browsers refresh bound cookies.
    public let refreshPath: String
    /// The bound cookie's name and attributes; its lifetime is the binding's.
    public let boundCookie: SessionCookieConfiguration
    /// What the session covers, as the session instructions say.
    public let scope: DeviceSessionInstructions.Scope
    /// The most challenges remembered as answered per session: refreshes beyond that many
    /// within a challenge's lifetime are refused (429) until older ones age out.
    public static let maximumAnsweredChallenges = 16

    /// - Parameters:
    ///   - binding: The secrets and lifetimes.
    ///   - registrationPath: Absolute path of the registration endpoint.
    ///   - refreshPath: Absolute path of the refresh endpoint.
    ///   - boundCookie: The bound cookie; by default `__Host-bound` with the session
    ///     cookie's default attributes. Local HTTP development needs an insecure one
    ///     (`SessionCookieConfiguration.insecureForDevelopment(name:)`), as the session cookie does.
    ///   - scope: The origin alone by default.
    /// - Throws: `SessionConfigurationError` naming `deviceBinding.registrationPath`,
    ///   `deviceBinding.refreshPath` or `deviceBinding.boundCookie.*`.
    public init(
        binding: DeviceBinding,
        registrationPath: String = "/sessionkit/dbsc/register",
        refreshPath: String = "/sessionkit/dbsc/refresh",
        boundCookie: SessionCookieConfiguration = DeviceBoundSessions.defaultBoundCookie,
        scope: DeviceSessionInstructions.Scope = .init()
    ) throws(SessionConfigurationError) {
        for (setting, path) in [("registrationPath", registrationPath), ("refreshPath", refreshPath)] {
            guard path.hasPrefix("/"), path.utf8.allSatisfy({ (0x21..<0x7F).contains($0) && $0 != UInt8(ascii: "\"") }) else {
                throw SessionConfigurationError(
                    setting: "deviceBinding.\(setting)", message: "must be an absolute path of printable ASCII without quotes")
            }
        }
        guard registrationPath != refreshPath else {
            throw SessionConfigurationError(setting: "deviceBinding.refreshPath", message: "must differ from registrationPath")
        }
        do {
            try boundCookie.validate()
        } catch {
            throw SessionConfigurationError(
                setting: "deviceBinding.boundCookie.\(error.setting.replacingOccurrences(of: "cookie.", with: ""))", message: error.message)
        }
        self.binding = binding
        self.registrationPath = registrationPath
        self.refreshPath = refreshPath
        self.boundCookie = boundCookie
        self.scope = scope
    }

    /// `__Host-bound`, with the session cookie's default attributes.
    public static var defaultBoundCookie: SessionCookieConfiguration {
        var cookie = SessionCookieConfiguration()
        cookie.name = "__Host-bound"
        return cookie
    }

    /// The endpoints, to exempt from cross-origin protection (`CrossOriginProtection/exemptPaths`):
    /// a proof signed by the device authenticates them.
    public var endpointPaths: Set<String> { [registrationPath, refreshPath] }

    // MARK: SessionDeviceGuard

    /// The bound cookie's name.
    public var boundCookieName: String { boundCookie.name }

    /// Whether `credential` is a valid bound cookie for `binding` at `now`: one HMAC, no
    /// store call, no key parsed.
    public func admits(_ binding: SessionDeviceBinding, credential: String?, now: Date) -> Bool {
        guard let credential else { return false }
        return self.binding.isValidBoundCookie(
            credential, sessionIdentifier: binding.identifier, keyThumbprint: DeviceKey.thumbprint(ofJWK: binding.publicKey), at: now)
    }

    // MARK: Registration

    /// The `Secure-Session-Registration` value for a response that signed `session` in, or
    /// `nil` when it has no stored session or is bound already. Loads the session if the
    /// request has not (after a sign-in it has).
    public func registrationHeader(for session: RequestSession) async throws -> String? {
        guard let stored = try await session.storedSessionIgnoringDeviceBinding(), stored.deviceBinding == nil else { return nil }
        let challenge = binding.issueChallenge(for: Self.registrationSubject(stored), at: try session.now())
        return DeviceBindingHeaders.registration(algorithms: binding.algorithms, path: registrationPath, challenge: challenge.text)
    }

    /// A registration challenge is issued for the session as it is when the header is sent.
    private static func registrationSubject(_ session: StoredSession) -> String { "register:" + session.key.handle }

    /// The registration endpoint: verifies the proof in `Secure-Session-Response` over a
    /// challenge issued for this session, stores the key with a new session identifier, and
    /// answers the session instructions with a bound cookie.
    ///
    /// Refusals (each a JSON error; none changes the session): no proof, two, or an invalid
    /// one (400 `device_proof_invalid`), a challenge not issued for this session or expired
    /// (400 `device_challenge_invalid`), no session (401 `not_authenticated`), a session bound
    /// already (403 `device_already_bound`), a registration that raced another (409).
    public func register(_ request: some SessionCarrierRequest, session: RequestSession) async -> DeviceBindingResponse {
        do {
            let now = try session.now()
            guard let stored = try await session.storedSessionIgnoringDeviceBinding() else {
                return .error(401, "not_authenticated", "registration needs a session; sign in first")
            }
            guard stored.deviceBinding == nil else {
                return .error(403, "device_already_bound", "this session is bound to a device already")
            }
            let proof: DeviceProof
            do {
                proof = try DeviceProof(registration: Self.proofText(request) ?? "")
            } catch {
                session.logger.debug("device registration proof refused", metadata: ["error": "\(error)"])
                return .error(400, "device_proof_invalid", "the registration proof was refused")
            }
            guard let challenge = binding.openChallenge(proof.challenge, for: Self.registrationSubject(stored), at: now) else {
                return .error(400, "device_challenge_invalid", "the proof does not answer a challenge this server issued for this session")
            }
            let bound = SessionDeviceBinding(
                identifier: DeviceBinding.newSessionIdentifier(), publicKey: proof.key.jwk, boundAt: now,
                answeredChallenges: [.init(nonce: challenge.nonce, issuedAt: challenge.issuedAt)])
            switch try await session.replaceDeviceBinding(expected: nil, with: bound) {
            case .applied:
                session.logger.info("session bound to a device key", metadata: ["sessionkit.device": "\(proof.key)"])
                return instructions(for: bound, now: now)
            case .conflict: return .error(409, "device_already_bound", "this session was bound to a device meanwhile")
            case .missing: return .error(409, SessionError.Code.sessionChanged.identifier, "the session ended meanwhile")
            }
        } catch let error as SessionError {
            return .error(error.status, error.code.identifier, error.message)
        } catch {
            return .error(503, SessionError.Code.storeUnavailable.identifier, "the session store is unavailable")
        }
    }

    // MARK: Refresh

    /// The refresh endpoint. A request without a proof is answered 403 with a fresh
    /// challenge; a proof signed by the session's registered key over an unanswered,
    /// unexpired challenge for it gets a new bound cookie and the session instructions. A
    /// session that has ended, or is not the one `Sec-Secure-Session-Id` names, is answered
    /// `{"continue": false}`.
    ///
    /// Refusals: a proof that is malformed, signed by another key or names another session
    /// (400 `device_proof_invalid`, which ends the binding on the browser); a challenge
    /// answered already, expired or not this server's (403 with a fresh challenge, so the
    /// browser signs again); more refreshes than ``maximumAnsweredChallenges`` within a
    /// challenge's lifetime (429).
    public func refresh(_ request: some SessionCarrierRequest, session: RequestSession) async -> DeviceBindingResponse {
        do {
            let now = try session.now()
            guard
                let identifier = Self.single(request.headerValues(DeviceBindingHeaders.sessionIdentifierName))
                    .flatMap(DeviceBindingHeaders.sessionIdentifier(in:))
            else {
                return .error(400, "device_session_unknown", "a refresh names its session in Sec-Secure-Session-Id")
            }
            guard let stored = try await session.storedSessionIgnoringDeviceBinding(), let current = stored.deviceBinding,
                current.identifier == identifier
            else {
                return DeviceBindingResponse(status: 200, json: DeviceSessionInstructions.ended(sessionIdentifier: identifier).json)
            }
            guard let text = Self.proofText(request) else { return challenge(for: current, now: now) }
            let proof: DeviceProof
            do {
                proof = try DeviceProof(refresh: text, registeredKey: try DeviceKey(jwk: current.publicKey))
                if let subject = proof.sessionIdentifier, subject != identifier {
                    throw DeviceProofError.malformed("sub names another session")
                }
            } catch {
                session.logger.info("device refresh proof refused", metadata: ["error": "\(error)"])
                return .error(400, "device_proof_invalid", "the refresh proof was refused")
            }
            guard let challenge = binding.openChallenge(proof.challenge, for: current.identifier, at: now),
                !current.answeredChallenges.contains(where: { $0.nonce == challenge.nonce })
            else { return challenge(for: current, now: now) }
            var answered = current
            let oldest = now - TimeInterval(binding.challengeLifetime.components.seconds)
            answered.answeredChallenges.removeAll { $0.issuedAt < oldest }
            guard answered.answeredChallenges.count < Self.maximumAnsweredChallenges else {
                return .error(429, "device_refresh_limited", "too many refreshes; try again in a few minutes")
            }
            answered.answeredChallenges.append(.init(nonce: challenge.nonce, issuedAt: challenge.issuedAt))
            switch try await session.replaceDeviceBinding(expected: current, with: answered) {
            case .applied: return instructions(for: answered, now: now)
            // Another refresh landed first: sign a fresh challenge.
            case .conflict: return self.challenge(for: current, now: now)
            case .missing:
                return DeviceBindingResponse(status: 200, json: DeviceSessionInstructions.ended(sessionIdentifier: identifier).json)
            }
        } catch let error as SessionError {
            return .error(error.status, error.code.identifier, error.message)
        } catch {
            return .error(503, SessionError.Code.storeUnavailable.identifier, "the session store is unavailable")
        }
    }

    // MARK: Responses

    /// 403 with a fresh challenge for `binding`'s session.
    private func challenge(for current: SessionDeviceBinding, now: Date) -> DeviceBindingResponse {
        let challenge = binding.issueChallenge(for: current.identifier, at: now)
        var response = DeviceBindingResponse.error(403, "device_challenge_required", "sign the challenge in Secure-Session-Challenge")
        response.headerFields.append(
            SessionHeaderField(
                name: DeviceBindingHeaders.challengeName,
                value: DeviceBindingHeaders.challenge(challenge.text, sessionIdentifier: current.identifier)))
        return response
    }

    /// 200 with the session instructions and a new bound cookie.
    private func instructions(for bound: SessionDeviceBinding, now: Date) -> DeviceBindingResponse {
        let cookie = binding.boundCookie(
            sessionIdentifier: bound.identifier, keyThumbprint: DeviceKey.thumbprint(ofJWK: bound.publicKey), at: now)
        let body = DeviceSessionInstructions(
            sessionIdentifier: bound.identifier, refreshURL: refreshPath, scope: scope,
            credentials: [.init(name: boundCookie.name, attributes: String(CookieHeader.attributes(boundCookie).dropFirst(2)))])
        var response = DeviceBindingResponse(status: 200, json: body.json)
        response.headerFields.append(
            SessionHeaderField(
                name: .setCookie,
                value: CookieHeader.setCookie(
                    cookie.value, maxAge: Int(binding.boundCookieLifetime.components.seconds), configuration: boundCookie)))
        return response
    }

    private static func proofText(_ request: some SessionCarrierRequest) -> String? {
        single(request.headerValues(DeviceBindingHeaders.responseName)).flatMap(DeviceBindingHeaders.proof(in:))
    }

    /// The one value of a header field; `nil` when it is absent or doubled, which is never
    /// guessed between.
    private static func single(_ values: [String]) -> String? { values.count == 1 ? values[0] : nil }

    /// Logs what `Secure-Session-Skipped` says of a request: a browser that could not
    /// refresh a bound session (the request is then refused all the same), or has no key
    /// to bind one with (the session stays unbound).
    public func inspect(_ request: any SessionCarrierRequest, logger: Logger) {
        let values = request.headerValues(DeviceBindingHeaders.skippedName)
        guard !values.isEmpty else { return }
        for entry in DeviceBindingHeaders.skipped(in: values) {
            logger.info(
                "browser skipped a device-bound session refresh",
                metadata: ["sessionkit.reason": "\(entry.reason)", "sessionkit.device_session": "\(entry.sessionIdentifier ?? "none")"])
        }
    }
}

/// What a registration or refresh endpoint answers: a status, header fields (a bound
/// cookie, a challenge, `Cache-Control: no-store`) and a JSON body. Adapters send it as is.
public struct DeviceBindingResponse: Sendable {
    /// The HTTP status.
    public var status: Int
    /// Header fields, `Content-Type` and `Cache-Control` included.
    public var headerFields: [SessionHeaderField]
    /// The JSON body.
    public var body: [UInt8]

    init(status: Int, json: Data) {
        self.status = status
        self.body = Array(json)
        self.headerFields = [
            SessionHeaderField(name: SessionHeaderName("content-type"), value: SessionError.jsonContentType),
            SessionHeaderField(name: SessionHeaderName("cache-control"), value: "no-store"),
        ]
    }

    /// `{"error", "message"}`, as every `SessionError` reads.
    static func error(_ status: Int, _ code: String, _ message: String) -> DeviceBindingResponse {
        DeviceBindingResponse(status: status, json: Data(SessionError.jsonBody(error: code, message: message)))
    }
}
#endif
