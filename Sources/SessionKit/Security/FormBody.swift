import Foundation

/// Fields of an HTML form body, URL-encoded or multipart: what CSRF checks and the demo's
/// form routes read. Exposed to the fuzzers and the adapters as SPI, not API.
@_spi(Parsers) public enum FormBody: Sendable {
    case urlEncoded
    case multipart(boundary: String)

    /// The form kind a `Content-Type` names, or `nil` for any other body.
    public init?(contentType: String) {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        switch parts.first?.lowercased() {
        case "application/x-www-form-urlencoded": self = .urlEncoded
        case "multipart/form-data":
            let boundary = parts.dropFirst().first { $0.lowercased().hasPrefix("boundary=") }.map {
                String($0.dropFirst("boundary=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            guard let boundary, !boundary.isEmpty else { return nil }
            self = .multipart(boundary: boundary)
        default: return nil
        }
    }

    /// The first value of the field called `name`, or `nil`.
    public func field(named name: String, in body: String) -> String? {
        switch self {
        case .urlEncoded:
            for pair in body.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard Self.decoded(parts[0]) == name else { continue }
                return parts.count > 1 ? Self.decoded(parts[1]) : ""
            }
            return nil
        case .multipart(let boundary):
            for part in body.components(separatedBy: "--" + boundary).dropFirst() {
                guard let split = part.range(of: "\r\n\r\n") else { continue }
                let headers = part[..<split.lowerBound].lowercased()
                guard headers.contains("name=\"\(name.lowercased())\"") else { continue }
                var value = part[split.upperBound...]
                if value.hasSuffix("\r\n") { value = value.dropLast() }  // "\r\n" is one Character
                return String(value)
            }
            return nil
        }
    }

    /// Every field of a URL-encoded body; a repeated name keeps its last value.
    public static func urlEncodedFields(in body: String) -> [String: String] {
        var fields = [String: String]()
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            fields[decoded(parts[0])] = parts.count > 1 ? decoded(parts[1]) : ""
        }
        return fields
    }

    private static func decoded(_ text: Substring) -> String {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
    }
}
