#if DeviceBound
import Foundation
import Logging
@_spi(Parsers) import SessionKit
import SessionKitDeviceBound
import SessionKitTestSupport
import SessionKitTesting
import Synchronization
import Testing

/// A request of header fields, as an adapter hands one over.
struct DeviceRequestFields: SessionCarrierRequest {
    var fields: [String: [String]] = [:]
    func headerValues(_ name: SessionHeaderName) -> [String] { fields[name.rawValue] ?? [] }
}

private extension SessionKey where Value == String {
    static var note: SessionKey<String> { SessionKey("note") }
}

/// The protocol run through the manager, without HTTP: a browser with a software key
/// registers after sign-in, uses its bound cookie, refreshes it, and a thief holding the
/// session cookie alone gets nothing.
@Suite struct DeviceBoundSessionsTests {
    let clock = ManualWallClock()
    let deviceBound = try! DeviceBoundSessions(binding: try! DeviceBinding(secrets: [[UInt8](repeating: 3, count: 32)]))
    let store = MemorySessionStore()
    let manager: SessionManager

    init() throws {
        manager = try SessionManager(store: store, wallClock: clock, deviceGuard: deviceBound)
    }

    /// A browser's cookie jar and key.
    final class Browser: @unchecked Sendable {
        var cookies: [String: String] = [:]
        let device: SoftwareDevice
        init(_ device: SoftwareDevice) { self.device = device }

        var cookieHeader: [String] { cookies.isEmpty ? [] : [cookies.map { "\($0)=\($1)" }.sorted().joined(separator: "; ")] }

        func keep(_ fields: [SessionHeaderField]) {
            for field in fields where field.name == .setCookie {
                let pair = field.value.split(separator: ";")[0].split(separator: "=", maxSplits: 1).map(String.init)
                cookies[pair[0]] = pair.count > 1 ? pair[1] : ""
            }
        }
    }

    /// One request: `headers` besides the browser's cookies; the session is committed and
    /// the browser keeps what `Set-Cookie` says.
    @discardableResult
    func send<Value>(
        _ browser: Browser, _ headers: [String: [String]] = [:], _ body: (RequestSession, DeviceRequestFields) async throws -> Value
    ) async throws -> Value {
        var request = DeviceRequestFields(fields: headers)
        request.fields["cookie"] = browser.cookieHeader
        let session = try manager.session(for: request, carriers: [.cookie], client: SessionClient(), logger: Logger(label: "test"))
        let result: Swift.Result<Value, any Error>
        do { result = .success(try await body(session, request)) } catch { result = .failure(error) }
        let outcome = await manager.commit(session)
        browser.keep(outcome.headerFields)
        return try result.get()
    }

    func answer(_ browser: Browser, _ response: DeviceBindingResponse) {
        browser.keep(response.headerFields)
    }

    /// Signs in and registers `browser`'s key; returns the session identifier.
    func signInAndRegister(_ browser: Browser) async throws -> String {
        let header = try await send(browser) { session, _ in
            try session.set(.note, "tea")
            try await session.authenticate(userID: "alice")
            return try await deviceBound.registrationHeader(for: session)
        }
        let registration = try #require(header)
        #expect(registration.hasPrefix("(ES256 RS256);path=\"/sessionkit/dbsc/register\";challenge=\""))
        let challenge = String(registration.split(separator: "challenge=\"")[1].dropLast())
        let response = try await send(browser, ["secure-session-response": [browser.device.proof(challenge: challenge)]]) {
            session, request in
            await deviceBound.register(request, session: session)
        }
        #expect(response.status == 200)
        #expect(response.headerFields.contains { $0.name.rawValue == "cache-control" && $0.value == "no-store" })
        answer(browser, response)
        let instructions = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        #expect(instructions?["refresh_url"] as? String == "/sessionkit/dbsc/refresh")
        #expect(browser.cookies["__Host-bound"] != nil)
        return try #require(instructions?["session_identifier"] as? String)
    }

    /// Asks for a challenge, signs it with `device`, and refreshes.
    func refresh(_ browser: Browser, identifier: String, signer: SoftwareDevice? = nil) async throws -> DeviceBindingResponse {
        let id = ["sec-secure-session-id": ["\"\(identifier)\""]]
        let first = try await send(browser, id) { session, request in await deviceBound.refresh(request, session: session) }
        #expect(first.status == 403)
        let field = try #require(first.headerFields.first { $0.name == DeviceBindingHeaders.challengeName }?.value)
        let challenge = String(field.split(separator: "\"")[0])
        let proof = (signer ?? browser.device).proof(challenge: challenge, subject: identifier) { header, _ in header["jwk"] = nil }
        let response = try await send(browser, id.merging(["secure-session-response": [proof]]) { $1 }) { session, request in
            await deviceBound.refresh(request, session: session)
        }
        answer(browser, response)
        return response
    }

    @Test(arguments: [SoftwareDevice.p256(), SoftwareDevice.rsa])
    func aBrowserRegistersUsesAndRefreshesItsBinding(device: SoftwareDevice) async throws {
        let browser = Browser(device)
        let identifier = try await signInAndRegister(browser)
        #expect(try await send(browser) { session, _ in try await session.get(.note) } == "tea")
        #expect(try await send(browser) { session, _ in try await session.info()?.deviceBoundSince } != nil)

        clock.advance(by: .seconds(601))
        await #expect(throws: SessionError.self) { try await send(browser) { session, _ in try await session.get(.note) } }
        #expect(try await refresh(browser, identifier: identifier).status == 200)
        #expect(try await send(browser) { session, _ in try await session.get(.note) } == "tea")
    }

    @Test func aThiefWithTheSessionCookieAloneGetsNothing() async throws {
        let browser = Browser(.p256())
        let identifier = try await signInAndRegister(browser)
        let thief = Browser(.p256())
        thief.cookies = browser.cookies.filter { $0.key != "__Host-bound" }
        await #expect { try await send(thief) { session, _ in try await session.get(.note) } } throws: {
            ($0 as? SessionError)?.code == .deviceBindingRequired
        }
        // Refreshing with its own key, or registering it, is refused.
        #expect(try await refresh(thief, identifier: identifier).status == 400)
        #expect(thief.cookies["__Host-bound"] == nil)
        let registration = try await send(thief, ["secure-session-response": [thief.device.proof(challenge: "x")]]) { session, request in
            await deviceBound.register(request, session: session)
        }
        #expect(registration.status == 403)
        // A bound cookie copied later stops working when it expires, and cannot be renewed.
        thief.cookies = browser.cookies
        #expect(try await send(thief) { session, _ in try await session.get(.note) } == "tea")
        clock.advance(by: .seconds(601))
        await #expect(throws: SessionError.self) { try await send(thief) { session, _ in try await session.get(.note) } }
        #expect(try await refresh(thief, identifier: identifier).status == 400)
    }

    @Test func aChallengeIsAnsweredOnceAndOnlyWhileFresh() async throws {
        let browser = Browser(.p256())
        let identifier = try await signInAndRegister(browser)
        let id = ["sec-secure-session-id": ["\"\(identifier)\""]]
        let first = try await send(browser, id) { session, request in await deviceBound.refresh(request, session: session) }
        let field = try #require(first.headerFields.first { $0.name == DeviceBindingHeaders.challengeName }?.value)
        let challenge = String(field.split(separator: "\"")[0])
        let proof = browser.device.proof(challenge: challenge, subject: identifier)
        let headers = id.merging(["secure-session-response": [proof]]) { $1 }
        #expect(try await send(browser, headers) { session, request in await deviceBound.refresh(request, session: session) }.status == 200)
        // Replayed: answered 403 with a new challenge, and no cookie.
        let replay = try await send(browser, headers) { session, request in await deviceBound.refresh(request, session: session) }
        #expect(replay.status == 403)
        #expect(!replay.headerFields.contains { $0.name == .setCookie })
        // Expired: the same.
        let late = try await send(browser, id) { session, request in await deviceBound.refresh(request, session: session) }
        let lateChallenge = String(
            try #require(late.headerFields.first { $0.name == DeviceBindingHeaders.challengeName }?.value).split(separator: "\"")[0])
        clock.advance(by: .seconds(301))
        let expired = id.merging(["secure-session-response": [browser.device.proof(challenge: lateChallenge)]]) { $1 }
        #expect(try await send(browser, expired) { session, request in await deviceBound.refresh(request, session: session) }.status == 403)
        // A tampered proof, alg none, another session's identifier: refused outright.
        let parts = browser.device.proof(challenge: challenge).split(separator: ".")
        for bad in [parts[0] + "." + parts[1] + ".AAAA", "e30.e30.", browser.device.proof(challenge: challenge, subject: "other")] {
            let response = try await send(browser, id.merging(["secure-session-response": [String(bad)]]) { $1 }) { session, request in
                await deviceBound.refresh(request, session: session)
            }
            #expect(response.status == 400 || response.status == 403, "\(bad.prefix(30))")
            #expect(!response.headerFields.contains { $0.name == .setCookie })
        }
    }

    @Test func endingTheSessionEndsTheBinding() async throws {
        let browser = Browser(.p256())
        let identifier = try await signInAndRegister(browser)
        try await send(browser) { session, _ in try session.destroy() }
        let id = ["sec-secure-session-id": ["\"\(identifier)\""]]
        let response = try await send(browser, id) { session, request in await deviceBound.refresh(request, session: session) }
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"continue":false,"session_identifier":"\#(identifier)"}"#)
    }

    @Test func theBindingSurvivesASecondSignIn() async throws {
        let browser = Browser(.p256())
        let identifier = try await signInAndRegister(browser)
        try await send(browser) { session, _ in try await session.authenticate(userID: "alice") }
        #expect(try await send(browser) { session, _ in try await session.get(.note) } == "tea")
        #expect(try await send(browser) { session, _ in try await deviceBound.registrationHeader(for: session) } == nil)
        clock.advance(by: .seconds(601))
        #expect(try await refresh(browser, identifier: identifier).status == 200)
    }

    @Test func aBrowsersSkippedRefreshIsLogged() throws {
        let logs = CapturedLogs()
        let request = DeviceRequestFields(fields: ["secure-session-skipped": [#"unreachable;session_identifier="abc""#]])
        _ = try manager.session(for: request, carriers: [.cookie], client: SessionClient(), logger: logs.logger)
        let record = try #require(logs.records.withLock { $0.first { $0.message.contains("skipped") } })
        #expect(record.metadata["sessionkit.reason"] == "unreachable")
        #expect(record.metadata["sessionkit.device_session"] == "abc")
    }

    /// A refresh without a valid proof answers, and never extends the session: the idle
    /// deadline stays where it was, though a touch was due.
    @Test func aRefusedRefreshDoesNotExtendTheSession() async throws {
        let browser = Browser(.p256())
        let identifier = try await signInAndRegister(browser)
        let key = try #require(try await send(browser) { session, _ in try await session.storedSessionIgnoringDeviceBinding()?.key })
        let before = try #require(store.load(key, now: clock.now()))
        clock.advance(by: .seconds(900))
        let thief = Browser(.p256())
        thief.cookies = browser.cookies.filter { $0.key != "__Host-bound" }
        #expect(try await refresh(thief, identifier: identifier, signer: thief.device).status == 400)
        let after = try #require(store.load(key, now: clock.now()))
        #expect(after.idleDeadline == before.idleDeadline)
        #expect(after.version == before.version)
    }

    /// Two proofs, or two session identifiers, in one request: refused, never guessed between.
    @Test func doubledHeadersAreRefused() async throws {
        let browser = Browser(.p256())
        let header = try #require(
            try await send(browser) { session, _ in
                try await session.authenticate(userID: "alice")
                return try await deviceBound.registrationHeader(for: session)
            })
        let challenge = String(header.split(separator: "challenge=\"")[1].dropLast())
        let proof = browser.device.proof(challenge: challenge)
        let doubled = try await send(browser, ["secure-session-response": [proof, proof]]) { session, request in
            await deviceBound.register(request, session: session)
        }
        #expect(doubled.status == 400)
        #expect(!doubled.headerFields.contains { $0.name == .setCookie })
        #expect(try await send(browser) { session, _ in try await session.info()?.deviceBoundSince } == nil)

        let identifier = try await signInAndRegister(browser)
        let ids = try await send(browser, ["sec-secure-session-id": ["\"\(identifier)\"", "\"\(identifier)\""]]) { session, request in
            await deviceBound.refresh(request, session: session)
        }
        #expect(ids.status == 400)
    }
}
#endif
