import Foundation
import SessionKit
import Testing

@Suite struct SessionTokenTests {
    @Test func generatedTokensAre43Base64URLCharacters() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let token = SessionToken.generate()
            #expect(token.text.count == 43)
            #expect(token.text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            #expect(SessionToken(parsing: token.text) == token)
            seen.insert(token.text)
        }
        #expect(seen.count == 1000)
    }

    @Test func storageKeyIsSHA256OfTheTokenBytes() throws {
        // 43 'A's decode to 32 zero bytes; SHA-256 of 32 zero bytes is a published vector.
        let token = try #require(SessionToken(parsing: String(repeating: "A", count: 43)))
        #expect(token.storageKey.hex == "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925")
        #expect(SessionStorageKey(hex: token.storageKey.hex) == token.storageKey)
        #expect(SessionStorageKey(bytes: token.storageKey.bytes) == token.storageKey)
        #expect(token.storageKey.shortHash == "66687aadf862bd77")
    }

    @Test func aStoresKeyNameIsItsPrefixAndThenTheHexDigits() throws {
        // Bytes chosen so that each digit from 0 to f appears in both halves of a byte.
        let key = try #require(SessionStorageKey(bytes: (0..<32).map { UInt8($0 * 8 + $0 % 8) }))
        let digits = key.bytes.map { String(format: "%02x", $0) }.joined()
        #expect(key.hex == digits)
        #expect(key.hex(after: "sessionkit:s:") == "sessionkit:s:" + digits)
        // A prefix counted in UTF-8 bytes, not characters.
        #expect(key.hex(after: "é✓:") == "é✓:" + digits)
        #expect(key.hex(after: "").utf8.count == 64)
    }

    @Test func descriptionNeverShowsTheToken() {
        let token = SessionToken.generate()
        #expect(!"\(token)".contains(token.text))
        #expect(!String(reflecting: token.storageKey).contains(token.text))
    }

    @Test(arguments: [
        "",  // empty
        String(repeating: "A", count: 42),  // short
        String(repeating: "A", count: 44),  // long
        String(repeating: "A", count: 42) + "=",  // padding
        String(repeating: "A", count: 42) + "+",  // base64, not base64url
        String(repeating: "A", count: 42) + "/",
        " " + String(repeating: "A", count: 42),  // whitespace
        String(repeating: "A", count: 42) + "B",  // non-canonical: unused low bits set
        String(repeating: "A", count: 42) + "é",
        String(repeating: "A", count: 86),
    ])
    func parsingRefusesAnythingButTheExactShape(_ text: String) {
        #expect(SessionToken(parsing: text) == nil)
    }

    @Test func parsingAcceptsEveryAlphabetCharacter() {
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        for character in alphabet {
            let text = String(repeating: character, count: 42) + "A"
            #expect(SessionToken(parsing: text)?.text == text)
        }
    }

    @Test func storageKeyHexParsingRefusesBadInput() {
        #expect(SessionStorageKey(hex: "abc") == nil)
        #expect(SessionStorageKey(hex: String(repeating: "g", count: 64)) == nil)
        #expect(SessionStorageKey(bytes: [UInt8](repeating: 0, count: 31)) == nil)
    }
}
