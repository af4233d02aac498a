import Foundation

/// JSON for the commonest session values — `Int`, `Bool` and `String` — written and read
/// without Foundation's coders, which cost about a microsecond a value (a counter read and
/// written on every request, the carrier's name read on every load).
///
/// Writing gives the very bytes `JSONEncoder` gives (its escapes, `\/` included), so what
/// stores hold and the sizes they check do not change. Reading takes only the plainest
/// forms — an integer with no sign but `-`, no leading zero, no fraction or exponent; a
/// string with no escape; `true` or `false` — and leaves every other form (and anything
/// malformed) to `JSONDecoder`, so both read the same values and refuse the same bytes.
enum ScalarJSON {
    /// `value`'s JSON when it is one of the scalars, else `nil`.
    static func encode(_ value: any Encodable & Sendable) -> Data? {
        switch value {
        case let int as Int: Data(String(int).utf8)
        case let bool as Bool: Data((bool ? "true" : "false").utf8)
        case let string as String: Data(quoted(string))
        default: nil
        }
    }

    /// `json` read as `Value` when `Value` is one of the scalars and `json` is in its
    /// plainest form, else `nil` (for `JSONDecoder` to read).
    static func decode<Value>(_ type: Value.Type, from json: Data) -> Value? {
        if Value.self == Int.self { return int(json) as? Value }
        if Value.self == String.self { return unescaped(json) as? Value }
        if Value.self == Bool.self { return bool(json) as? Value }
        return nil
    }

    /// `string` as a JSON string literal, escaped as `JSONEncoder` escapes it: a string
    /// value, and a member name in an object of values (`SessionValuesJSON`).
    static func quoted(_ string: String) -> [UInt8] {
        var json = [UInt8]()
        json.reserveCapacity(string.utf8.count + 2)
        func escaped(_ byte: UInt8) {
            json.append(UInt8(ascii: "\\"))
            json.append(byte)
        }
        json.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): escaped(byte)
            case 0x08: escaped(UInt8(ascii: "b"))
            case 0x0C: escaped(UInt8(ascii: "f"))
            case 0x0A: escaped(UInt8(ascii: "n"))
            case 0x0D: escaped(UInt8(ascii: "r"))
            case 0x09: escaped(UInt8(ascii: "t"))
            case ..<0x20:
                escaped(UInt8(ascii: "u"))
                json += [UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigit(byte >> 4), hexDigit(byte & 0xF)]
            default: json.append(byte)
            }
        }
        json.append(UInt8(ascii: "\""))
        return json
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// `-?(0|[1-9][0-9]*)` within `Int`'s range.
    private static func int(_ json: Data) -> Int? {
        json.withUnsafeBytes { bytes -> Int? in
            let negative = bytes.first == UInt8(ascii: "-")
            let digits = bytes.dropFirst(negative ? 1 : 0)
            guard let first = digits.first, digits.count <= 19, first != UInt8(ascii: "0") || digits.count == 1 else { return nil }
            var value = 0
            for digit in digits {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
                let (times10, overflow) = value.multipliedReportingOverflow(by: 10)
                let (next, overflowAgain) =
                    negative
                    ? times10.subtractingReportingOverflow(Int(digit - UInt8(ascii: "0")))
                    : times10.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
                guard !overflow, !overflowAgain else { return nil }
                value = next
            }
            // "-0" is left to JSONDecoder, whatever it makes of it.
            return negative && value == 0 ? nil : value
        }
    }

    /// The string a JSON string literal holds when it is quoted valid UTF-8 with no escape
    /// and no control character; `nil` for any other bytes (for `JSONDecoder` to read).
    static func unescaped(_ literal: some BidirectionalCollection<UInt8>) -> String? {
        guard literal.count >= 2, literal.first == UInt8(ascii: "\""), literal.last == UInt8(ascii: "\"") else { return nil }
        let inner = literal.dropFirst().dropLast()
        guard !inner.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") }) else { return nil }
        return String(validating: inner, as: UTF8.self)
    }

    private static func bool(_ json: Data) -> Bool? {
        if json.elementsEqual("true".utf8) { return true }
        if json.elementsEqual("false".utf8) { return false }
        return nil
    }
}
