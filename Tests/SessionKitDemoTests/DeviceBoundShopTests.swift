#if DeviceBound
import ArgumentParser
import Foundation
import HTTPTypes
import Logging
import NIOCore
import SessionKit
import SessionKitDeviceBound
import SessionKitStores
import SessionKitTestSupport
import SessionKitTesting
import Testing

@testable import SessionKitDemo

/// The stores the protocol runs on: every server-side kind, the networked ones where their
/// servers are set (and then required, with `SESSIONKIT_REQUIRE_SERVICES=1`).
private let stores: [String] =
    ["memory", "sqlite"]
    + [("SESSIONKIT_POSTGRES_URL", "postgres"), ("SESSIONKIT_REDIS_URL", "redis"), ("SESSIONKIT_REDIS_CLUSTER_URL", "redis-cluster")]
    .filter { TestServices.enabled($0.0) }.map(\.1)

/// A browser with a software key: it keeps every cookie it is sent, and plays DBSC's part.
private final class KeyedBrowser: @unchecked Sendable {
    let client: any AdapterClient
    let device: SoftwareDevice
    var cookies: [String: String] = [:]

    init(_ client: any AdapterClient, device: SoftwareDevice = .p256()) {
        self.client = client
        self.device = device
    }

    @discardableResult
    func send(_ method: HTTPRequest.Method, _ uri: String, json: String? = nil, headers extra: HTTPFields = [:]) async throws
        -> AdapterResponse
    {
        var headers = extra
        if !cookies.isEmpty { headers[.cookie] = cookies.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: "; ") }
        if json != nil { headers[.contentType] = "application/json" }
        let response = try await client.execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
        for field in response.headers[values: .setCookie] {
            let pair = field.split(separator: ";")[0].split(separator: "=", maxSplits: 1).map(String.init)
            if field.contains("Max-Age=0") { cookies[pair[0]] = nil } else { cookies[pair[0]] = pair.count > 1 ? pair[1] : "" }
        }
        return response
    }

    static func field(_ name: String) -> HTTPField.Name { HTTPField.Name(name)! }

    /// Answers the challenge in `header` (a registration's or a refresh's) with a proof.
    func proof(answering challenge: String, for identifier: String? = nil, by signer: SoftwareDevice? = nil) -> HTTPFields {
        var fields = HTTPFields()
        fields[Self.field("Secure-Session-Response")] = "\"" + (signer ?? device).proof(challenge: challenge, subject: identifier) + "\""
        if let identifier { fields[Self.field("Sec-Secure-Session-Id")] = "\"\(identifier)\"" }
        return fields
    }

    /// A refresh: 403 with a challenge, then the challenge signed by `signer`.
    func refresh(_ identifier: String, by signer: SoftwareDevice? = nil, headers: HTTPFields = [:]) async throws -> AdapterResponse {
        var ask = headers
        ask[Self.field("Sec-Secure-Session-Id")] = "\"\(identifier)\""
        let first = try await send(.post, "/sessionkit/dbsc/refresh", headers: ask)
        #expect(first.status == .forbidden)
        let challenge = try #require(first.headers[Self.field("Secure-Session-Challenge")]).split(separator: "\"")[0]
        var answer = headers
        answer.append(contentsOf: proof(answering: String(challenge), for: identifier, by: signer))
        return try await send(.post, "/sessionkit/dbsc/refresh", headers: answer)
    }
}

private func error(_ response: AdapterResponse) -> String? {
    (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])?["error"] as? String
}

@Suite struct DeviceBoundShopTests {
    static let password = "correct horse"

    /// Runs `body` with a client of the demo shop on `framework`, its sessions in `store`,
    /// device binding on, and a clock the test moves.
    func withShop(
        _ framework: Framework, _ store: String, live: Bool = false,
        _ body: @escaping @Sendable (any AdapterClient, ManualWallClock) async throws -> Void
    ) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sessionkit-dbsc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let spec: StoreSpec =
            switch store {
            case "sqlite": try StoreSpec(parsing: "sqlite:" + folder.appendingPathComponent("sessions.sqlite").path)
            case "postgres": try StoreSpec(parsing: try TestServices.value("SESSIONKIT_POSTGRES_URL"))
            case "redis": try StoreSpec(parsing: try TestServices.value("SESSIONKIT_REDIS_URL"))
            case "redis-cluster": try StoreSpec(parsing: try TestServices.value("SESSIONKIT_REDIS_CLUSTER_URL"))
            default: try StoreSpec(parsing: store)
            }
        let clock = ManualWallClock()
        let deviceBound = try DeviceBoundSessions(binding: try DeviceBinding(secrets: [[UInt8](repeating: 9, count: 32)]))
        try await spec.withStore(logger: Logger(label: "test")) { sessions in
            var shop = Shop(
                manager: try SessionManager(store: sessions, wallClock: clock, deviceGuard: deviceBound),
                accounts: Accounts(password: Self.password, rounds: Accounts.testOnlyRounds),
                storeDescription: store
            )
            shop.deviceBound = deviceBound
            try await shop.test(framework, live: live) { client in try await body(client, clock) }
        }
    }

    /// Signs in as alice and registers the browser's key; returns the session identifier.
    private func signInAndRegister(_ browser: KeyedBrowser) async throws -> String {
        let login = try await browser.send(.post, "/api/login", json: #"{"username":"alice","password":"\#(Self.password)"}"#)
        #expect(login.status == .ok)
        let header = try #require(login.headers[KeyedBrowser.field("Secure-Session-Registration")])
        #expect(header.hasPrefix(#"(ES256 RS256);path="/sessionkit/dbsc/register";challenge=""#))
        let challenge = String(header.split(separator: "challenge=\"")[1].dropLast())
        let registered = try await browser.send(.post, "/sessionkit/dbsc/register", headers: browser.proof(answering: challenge))
        #expect(registered.status == .ok)
        #expect(registered.headers[.cacheControl] == "no-store")
        #expect(browser.cookies["__Host-bound"] != nil)
        let instructions = try #require(try JSONSerialization.jsonObject(with: Data(registered.body.readableBytesView)) as? [String: Any])
        let credentials = try #require((instructions["credentials"] as? [[String: Any]])?.first)
        #expect(credentials["name"] as? String == "__Host-bound")
        #expect((instructions["scope"] as? [String: Any])?["include_site"] as? Bool == false)
        return try #require(instructions["session_identifier"] as? String)
    }

    @Test(arguments: Framework.allCases, stores)
    func theProtocolHoldsOnTheDemo(_ framework: Framework, _ store: String) async throws {
        try await withShop(framework, store) { client, clock in
            let browser = KeyedBrowser(client)
            #expect(try await browser.send(.post, "/api/cart/items", json: #"{"sku":"tea-green","quantity":2}"#).status == .ok)
            let identifier = try await signInAndRegister(browser)
            #expect(try await browser.send(.get, "/api/cart").status == .ok)
            let devices = try await browser.send(.get, "/api/sessions")
            let listed = try JSONSerialization.jsonObject(with: Data(devices.body.readableBytesView)) as? [[String: Any]]
            #expect(listed?.first { $0["current"] as? Bool == true }?["deviceBoundSince"] is String)

            // A thief with the session cookie alone: refused everywhere, and cannot refresh.
            let thief = KeyedBrowser(client)
            thief.cookies = browser.cookies.filter { $0.key != "__Host-bound" }
            let stolen = try await thief.send(.get, "/api/cart")
            #expect(stolen.status == .unauthorized)
            #expect(error(stolen) == "device_binding_required")
            #expect(try await thief.send(.get, "/").status == .unauthorized)
            #expect(try await thief.send(.post, "/api/logout").status == .unauthorized)
            #expect(try await thief.refresh(identifier, by: thief.device).status == .badRequest)
            #expect(thief.cookies["__Host-bound"] == nil)

            // The bound cookie expires; the browser refreshes it with its key.
            clock.advance(by: .seconds(601))
            #expect(try await browser.send(.get, "/api/cart").status == .unauthorized)
            let refreshed = try await browser.refresh(identifier)
            #expect(refreshed.status == .ok)
            let cart = try await browser.send(.get, "/api/cart")
            #expect(cart.status == .ok)
            #expect(String(buffer: cart.body).contains("\"sku\":\"tea-green\""))

            // Logging out ends the binding: the next refresh says so.
            #expect(try await browser.send(.post, "/api/logout").status == .noContent)
            let ended = try await browser.send(
                .post, "/sessionkit/dbsc/refresh", headers: [KeyedBrowser.field("Sec-Secure-Session-Id"): "\"\(identifier)\""])
            #expect(ended.status == .ok)
            #expect(String(buffer: ended.body) == #"{"continue":false,"session_identifier":"\#(identifier)"}"#)
        }
    }

    @Test(arguments: Framework.allCases)
    func badProofsAndCrossSiteRefreshesOverARealConnection(_ framework: Framework) async throws {
        try await withShop(framework, "memory", live: true) { client, _ in
            let browser = KeyedBrowser(client, device: .rsa)
            let identifier = try await signInAndRegister(browser)
            // The endpoints are exempt from cross-origin protection: the proof authenticates them.
            let crossSite: HTTPFields = [KeyedBrowser.field("Sec-Fetch-Site"): "cross-site", .origin: "https://elsewhere.example"]
            #expect(try await browser.refresh(identifier, headers: crossSite).status == .ok)
            // A proof that is not one, or signs another session's identifier, or a replayed one.
            let ask: HTTPFields = [KeyedBrowser.field("Sec-Secure-Session-Id"): "\"\(identifier)\""]
            let challenge = try #require(
                try await browser.send(.post, "/sessionkit/dbsc/refresh", headers: ask).headers[
                    KeyedBrowser.field("Secure-Session-Challenge")]
            ).split(separator: "\"")[0]
            for proof in ["e30.e30.", "\"not a jwt\"", browser.device.proof(challenge: String(challenge), subject: "another")] {
                var headers = ask
                headers[KeyedBrowser.field("Secure-Session-Response")] = proof
                let refused = try await browser.send(.post, "/sessionkit/dbsc/refresh", headers: headers)
                #expect(refused.status == .badRequest)
                #expect(refused.headers[values: .setCookie].isEmpty)
            }
            // The proof with the session's identifier, once each.
            let good = browser.proof(answering: String(challenge), for: identifier)
            #expect(try await browser.send(.post, "/sessionkit/dbsc/refresh", headers: good).status == .ok)
            let replayed = try await browser.send(.post, "/sessionkit/dbsc/refresh", headers: good)
            #expect(replayed.status == .forbidden)
            #expect(replayed.headers[values: .setCookie].isEmpty)
            // A second registration of a bound session is refused.
            let again = try await browser.send(.post, "/sessionkit/dbsc/register", headers: browser.proof(answering: String(challenge)))
            #expect(again.status == .forbidden)
        }
    }

    /// Device binding keeps keys and single-use challenges on the server: with sealed
    /// cookies the demo refuses to start, naming the setting.
    @Test func sealedCookiesRefuseDeviceBinding() {
        #expect {
            _ = try DemoCommand.parseAsRoot(["--store", "sealed", "--device-bound"])
        } throws: { error in
            DemoCommand.message(for: error).contains("--device-bound needs server-side sessions")
        }
        #expect(throws: Never.self) { _ = try DemoCommand.parseAsRoot(["--store", "memory", "--device-bound"]) }
    }
}
#endif
