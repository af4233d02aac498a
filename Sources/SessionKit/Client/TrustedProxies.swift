/// Which peers may tell us the client's address in a forwarding header.
///
/// The connection's address is the client's unless the peer is one of ``addresses``;
/// then the forwarding header is read from the right (the entry the nearest proxy
/// added) and the first address that is not itself a trusted proxy is the client's.
/// A header from any other peer is ignored: clients can write anything into it.
public struct TrustedProxies: Sendable, Hashable {
    /// The proxies' own addresses, exactly as the server sees them (no ranges).
    public var addresses: Set<String>
    /// The header proxies append the client's address to. The default is `X-Forwarded-For`.
    public var header: String

    /// Proxies at `addresses` whose `header` names the client.
    public init(addresses: Set<String>, header: String = "X-Forwarded-For") {
        self.addresses = addresses
        self.header = header
    }

    /// The client's address given the connection's peer and every value of ``header``.
    public func clientAddress(peer: String?, forwarded fields: some Sequence<String>) -> String? {
        guard let peer, addresses.contains(peer) else { return peer }
        let hops = fields.flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces() }
        for hop in hops.reversed() {
            guard Self.looksLikeAddress(hop) else { return peer }
            if !addresses.contains(String(hop)) { return String(hop) }
        }
        return peer
    }

    private static func looksLikeAddress(_ text: Substring) -> Bool {
        !text.isEmpty && text.count <= 45 && text.allSatisfy { $0.isHexDigit || $0 == "." || $0 == ":" }
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
