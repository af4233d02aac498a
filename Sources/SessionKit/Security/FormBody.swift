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

    /// Every field of `body`, in order (a name may repeat). A multipart part without a
    /// `name` in its `Content-Disposition` is skipped; its value is the part's body as text.
    public func fields(in body: String) -> [(name: String, value: String)] {
        switch self {
        case .urlEncoded:
            return body.split(separator: "&").map { pair in
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (Self.decoded(parts[0]), parts.count > 1 ? Self.decoded(parts[1]) : "")
            }
        case .multipart(let boundary):
            return body.components(separatedBy: "--" + boundary).dropFirst().compactMap { part in
                guard let split = part.range(of: "\r\n\r\n"), let name = Self.partName(part[..<split.lowerBound]) else { return nil }
                var value = part[split.upperBound...]
                if value.hasSuffix("\r\n") { value = value.dropLast() }  // "\r\n" is one Character
                return (name, String(value))
            }
        }
    }

    /// The first value of the field called `name`, or `nil`.
    public func field(named name: String, in body: String) -> String? {
        fields(in: body).first { $0.name == name }?.value
    }

    /// Every field by name; a repeated name keeps its last value.
    public func fieldsByName(in body: String) -> [String: String] {
        Dictionary(fields(in: body), uniquingKeysWith: { _, last in last })
    }

    /// The `name` parameter of a part's `Content-Disposition` (not `filename`).
    private static func partName(_ headers: Substring) -> String? {
        var rest = headers[...]
        while let found = rest.range(of: "name=\"") {
            let before = rest[..<found.lowerBound].last
            let value = rest[found.upperBound...].prefix { $0 != "\"" }
            if before == nil || before == " " || before == ";" { return String(value) }
            rest = rest[found.upperBound...]
        }
        return nil
    }

    private static func decoded(_ text: Substring) -> String {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
    }
}
