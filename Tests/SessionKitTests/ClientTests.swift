import SessionKit
import Testing

@Suite struct ClientTests {
    @Test(arguments: [
        ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0",
            "Edge on Windows"
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            "Safari on macOS"
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iPhone"
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
            "Chrome on Android"
        ),
        ("curl/8.5.0", "curl"),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", "Bot"),
        ("", "Unknown device"),
    ])
    func deviceLabels(_ agent: String, _ label: String) {
        #expect(DeviceLabel.describe(userAgent: agent) == label)
    }

    @Test func userAgentIsTruncated() {
        #expect(SessionClient(userAgent: String(repeating: "x", count: 5000)).userAgent?.count == SessionClient.maxUserAgentLength)
    }

    @Test func forwardedAddressIsTrustedOnlyFromAListedProxy() {
        let proxies = TrustedProxies(addresses: ["10.0.0.2", "10.0.0.3"])
        // Not from a proxy: the header is the client's own claim and is ignored.
        #expect(proxies.clientAddress(peer: "198.51.100.7", forwarded: ["203.0.113.1"]) == "198.51.100.7")
        // From a proxy: the rightmost address that is not a proxy.
        #expect(proxies.clientAddress(peer: "10.0.0.2", forwarded: ["203.0.113.66, 198.51.100.9, 10.0.0.3"]) == "198.51.100.9")
        #expect(proxies.clientAddress(peer: "10.0.0.2", forwarded: ["203.0.113.66", "198.51.100.9"]) == "198.51.100.9")
        #expect(proxies.clientAddress(peer: "10.0.0.2", forwarded: ["2001:db8::1"]) == "2001:db8::1")
        // Nothing usable: the proxy's own address.
        #expect(proxies.clientAddress(peer: "10.0.0.2", forwarded: []) == "10.0.0.2")
        #expect(proxies.clientAddress(peer: "10.0.0.2", forwarded: ["<script>"]) == "10.0.0.2")
        #expect(proxies.clientAddress(peer: nil, forwarded: ["203.0.113.1"]) == nil)
    }

    @Test func userAgentsAreCutByUTF8BytesAtAScalarBoundary() {
        let agent = String(repeating: "é", count: 200)  // 400 bytes
        let kept = SessionClient(userAgent: agent).userAgent ?? ""
        #expect(kept.utf8.count <= SessionClient.maxUserAgentLength)
        #expect(kept.utf8.count == 256 && kept.unicodeScalars.allSatisfy { $0 == "é" })
        let short = "curl/8.5.0"
        #expect(SessionClient(userAgent: short).userAgent == short)
    }
}
