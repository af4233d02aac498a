import SessionKit
import Testing

@Suite struct CrossOriginProtectionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var method = "POST"
        var path = "/cart"
        var origin: String?
        var site: String?
        var host: String? = "shop.example:8080"
        var allowed: Bool
        var testDescription: String {
            "\(method) origin=\(origin ?? "-") site=\(site ?? "-") host=\(host ?? "-") → \(allowed ? "pass" : "refuse")"
        }
    }

    static let cases: [Case] = [
        // Safe methods always pass.
        Case(method: "GET", origin: "https://evil.example", site: "cross-site", allowed: true),
        Case(method: "HEAD", site: "cross-site", allowed: true),
        Case(method: "OPTIONS", site: "cross-site", allowed: true),
        // Sec-Fetch-Site decides when present.
        Case(site: "same-origin", allowed: true),
        Case(site: "none", allowed: true),
        Case(site: "cross-site", allowed: false),
        Case(origin: "http://shop.example:8080", site: "cross-site", allowed: false),
        Case(site: "same-site", allowed: false),
        Case(site: "SAME-ORIGIN", allowed: true),
        Case(site: "something-new", allowed: false),
        // Without it, Origin against Host.
        Case(origin: "http://shop.example:8080", allowed: true),
        Case(origin: "http://SHOP.example:8080", allowed: true),
        Case(origin: "http://shop.example:9090", allowed: false),
        Case(origin: "https://evil.example", allowed: false),
        Case(origin: "null", allowed: false),
        Case(origin: "http://shop.example:8080", host: nil, allowed: false),
        // Neither header: not a browser.
        Case(allowed: true),
        Case(method: "DELETE", allowed: true),
        Case(method: "PUT", origin: "https://evil.example", allowed: false),
    ]

    @Test(arguments: cases)
    func decides(_ testCase: Case) {
        let protection = CrossOriginProtection()
        let allowed = protection.allows(
            method: testCase.method, path: testCase.path, origin: testCase.origin, secFetchSite: testCase.site, host: testCase.host)
        #expect(allowed == testCase.allowed)
    }

    @Test func trustedOriginsSameSiteAndExemptPathsAreExplicit() {
        var protection = CrossOriginProtection()
        protection.trustedOrigins = ["https://Admin.example"]
        #expect(protection.allows(method: "POST", path: "/", origin: "https://admin.example", secFetchSite: "cross-site", host: "shop"))
        #expect(!protection.allows(method: "POST", path: "/", origin: "https://other.example", secFetchSite: "cross-site", host: "shop"))
        protection.allowSameSite = true
        #expect(protection.allows(method: "POST", path: "/", origin: nil, secFetchSite: "same-site", host: "shop"))
        #expect(!protection.allows(method: "POST", path: "/", origin: nil, secFetchSite: "cross-site", host: "shop"))
        protection.exemptPaths = ["/dbsc/refresh"]
        #expect(
            protection.allows(method: "POST", path: "/dbsc/refresh", origin: "https://x.example", secFetchSite: "cross-site", host: "shop"))
    }
}
