package import Foundation

/// A session's values as one JSON object, for stores that keep them in a single JSON
/// column. Values stay encoded: splitting an object finds each member's bytes without
/// decoding them, so a request decodes only the keys its handler reads.
package enum SessionValuesJSON {
    /// `{"name": value, ...}` from each value's JSON.
    package static func encodeObject(_ values: [String: SessionValue]) throws -> Data {
        var output = Data("{".utf8)
        var first = true
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
            output.append(contentsOf: ScalarJSON.quoted(name))
            output.append(UInt8(ascii: ":"))
            output.append(try value.encodedJSON())
        }
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// The members of a JSON object, each value kept as its JSON bytes.
    /// Throws ``SessionStoreError/Code/corrupt`` when `bytes` is not a JSON object.
    package static func decodeObject(_ bytes: some Collection<UInt8>) throws -> [String: SessionValue] {
        var scanner = Scanner(bytes: Array(bytes))
        return try scanner.object()
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func corrupt(_ what: String) -> SessionStoreError {
            SessionStoreError(code: .corrupt, message: "stored session values are not a JSON object: \(what) at byte \(index)")
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        /// A member name from its string literal (quotes included). Only a name with escapes
        /// (or bytes that are not plain UTF-8) needs the JSON decoder.
        func name(_ literal: ArraySlice<UInt8>) throws -> String {
            if let name = ScalarJSON.unescaped(literal) { return name }
            do {
                return try Scanner.decoder.decode(String.self, from: Data(literal))
            } catch {
                throw corrupt("a member name that is not a JSON string")
            }
        }

        private static let decoder = JSONDecoder()

        mutating func expect(_ byte: UInt8) throws {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == byte else { throw corrupt("expected '\(Character(UnicodeScalar(byte)))'") }
            index += 1
        }

        mutating func object() throws -> [String: SessionValue] {
            try expect(UInt8(ascii: "{"))
            var members = [String: SessionValue]()
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return try end(members)
            }
            while true {
                skipWhitespace()
                let keyStart = index
                try skipString()
                let key = try name(bytes[keyStart..<index])
                try expect(UInt8(ascii: ":"))
                skipWhitespace()
                let valueStart = index
                try skipValue()
                members[key] = SessionValue(encodedJSON: Data(bytes[valueStart..<index]))
                skipWhitespace()
                guard index < bytes.count else { throw corrupt("unterminated object") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect(UInt8(ascii: "}"))
                return try end(members)
            }
        }

        mutating func end(_ members: [String: SessionValue]) throws -> [String: SessionValue] {
            skipWhitespace()
            guard index == bytes.count else { throw corrupt("trailing bytes") }
            return members
        }

        mutating func skipString() throws {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw corrupt("expected a string") }
            index += 1
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\\"): index += 2
                case UInt8(ascii: "\""):
                    index += 1
                    return
                default: index += 1
                }
            }
            throw corrupt("unterminated string")
        }

        /// Skips one value: a string, or anything up to the next top-level `,` or `}`
        /// with brackets balanced and strings skipped whole.
        mutating func skipValue() throws {
            var depth = 0
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    try skipString()
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 {
                        guard index > start else { throw corrupt("missing value") }
                        return
                    }
                    depth -= 1
                case UInt8(ascii: ","):
                    if depth == 0 {
                        guard index > start else { throw corrupt("missing value") }
                        return
                    }
                default: break
                }
                index += 1
            }
            if depth != 0 || index == start { throw corrupt("unterminated value") }
        }
    }
}
