import Foundation
import SessionKit
import Testing

/// `Int`, `Bool` and `String` values are written and read without Foundation's coders: the
/// bytes written must be `JSONEncoder`'s, and every input must read as `JSONDecoder` reads
/// it (the same value, or a refusal).
struct SessionValueJSONTests {
    private static let reference: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    private static let strings: [String] =
        (0..<0x80).map { String(UnicodeScalar(UInt8($0))) } + [
            "", "cart", "a/b", #""quoted""#, #"back\slash"#, "tab\tand\nlines\r", "é", "e\u{301}", "😀", "\u{2028}\u{2029}",
            "\u{FEFF}", "mixed \u{0}\u{1F}\u{7F} ascii", "日本語のテキスト", String(repeating: "x/\"", count: 100),
        ]

    @Test func writesTheBytesJSONEncoderWrites() throws {
        for int in [0, 1, -1, 42, -42, 1_000_000, Int.max, Int.min] {
            #expect(try SessionValue(int).encodedJSON() == Self.reference.encode(int), "\(int)")
        }
        for bool in [true, false] {
            #expect(try SessionValue(bool).encodedJSON() == Self.reference.encode(bool))
        }
        for string in Self.strings {
            #expect(try SessionValue(string).encodedJSON() == Self.reference.encode(string), "\(string.debugDescription)")
        }
    }

    @Test func randomStringsWriteAsJSONEncoderWritesThemAndReadBack() throws {
        var generator = SystemRandomNumberGenerator()
        let pool = Array(Self.strings.joined())
        for _ in 0..<500 {
            let string = String((0..<Int.random(in: 0...40, using: &generator)).map { _ in pool.randomElement(using: &generator)! })
            let written = try SessionValue(string).encodedJSON()
            #expect(written == (try Self.reference.encode(string)), "\(string.debugDescription)")
            #expect(try SessionValue(encodedJSON: written).decode(as: String.self) == string)
        }
    }

    @Test func readsEveryInputAsJSONDecoderReadsIt() {
        let inputs: [[UInt8]] =
            [
                "0", "-0", "01", "-01", "1.0", "1e3", " 1", "1 ", "-", "", "+1", "42", "-42",
                "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
                "12345678901234567890", "true", "false", "True", "null", "tru", #""a""#, #""""#, #""a\nb""#, #""\u00e9""#,
                #""é""#, #""a/b""#, #""a\/b""#, #""unterminated"#, #"""#, #""a"b""#, "\"a\u{1}b\"", "\"tab\there\"",
            ].map { Array($0.utf8) } + [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22]]
        for bytes in inputs {
            let json = Data(bytes)
            let described = String(decoding: bytes, as: UTF8.self).debugDescription
            #expect(Self.read(Int.self, json) == Self.reference(Int.self, json), "Int from \(described)")
            #expect(Self.read(String.self, json) == Self.reference(String.self, json), "String from \(described)")
            #expect(Self.read(Bool.self, json) == Self.reference(Bool.self, json), "Bool from \(described)")
        }
    }

    /// A stored object of values (SQLite's and PostgreSQL's column) names its members as
    /// string values are written, and reads them back; a member name that is not a JSON
    /// string is refused as corrupt.
    @Test func anObjectOfValuesKeepsEveryMemberName() throws {
        // Swift's strings compare by canonical equivalence ("é" is "e\u{301}"): one of each.
        let names = Array(Set(Self.strings))
        let values = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, SessionValue($0)) })
        let object = try SessionValuesJSON.encodeObject(values)
        for name in names {
            #expect(object.range(of: try Self.reference.encode(name) + Data(":".utf8)) != nil, "\(name.debugDescription)")
        }
        let read = try SessionValuesJSON.decodeObject(object)
        #expect(Set(read.keys) == Set(names))
        for (index, name) in names.enumerated() { #expect(try read[name]?.decode(as: Int.self) == index) }
        for corrupt: [UInt8] in [[0x7B, 0x22, 0x61, 0x01, 0x22, 0x3A, 0x31, 0x7D], [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]] {
            #expect { try SessionValuesJSON.decodeObject(corrupt) } throws: { ($0 as? SessionStoreError)?.code == .corrupt }
        }
    }

    /// The value a session reads, or `nil` when it refuses the bytes.
    private static func read<Value: Codable & Sendable>(_ type: Value.Type, _ json: Data) -> Value? {
        try? SessionValue(encodedJSON: json).decode(as: type)
    }

    private static func reference<Value: Codable & Sendable>(_ type: Value.Type, _ json: Data) -> Value? {
        try? JSONDecoder().decode(type, from: json)
    }
}
