import Foundation
import NIOCore
import SessionKit
import Testing

@testable import SessionKitRedis

/// How the store reads a session hash (an `HGETALL` reply, or a script's): no Redis needed.
struct RedisSessionHashTests {
    let key = SessionToken.generate().storageKey

    func reply(_ fields: [(String, String)]) -> RESPValue {
        .array(fields.flatMap { [RESPValue.bulkString(ByteBuffer(string: $0.0)), .bulkString(ByteBuffer(string: $0.1))] })
    }

    var complete: [(String, String)] {
        [
            ("m:created", "1796000000000000"), ("m:last", "1796000001500000"), ("m:idle", "1796001800000000"),
            ("m:abs", "1796086400000000"), ("m:user", "ada"), ("m:auth", "1796000001000000"), ("m:pers", "1"),
            ("m:ip", "192.0.2.7"), ("m:ua", ""), ("m:ver", "42"), ("v:cart", #"["tea"]"#), ("v:a:b", "3"),
        ]
    }

    @Test func everyFieldIsRead() throws {
        let binding = SessionDeviceBinding(identifier: "device", publicKey: "key", boundAt: Date(timeIntervalSince1970: 1_796_000_000))
        let session = try #require(try RedisSessionStore.session(key, reply(complete + [("m:bind", binding.storedForm)])))
        #expect(session.key == key)
        #expect(session.createdAt == Date(timeIntervalSince1970: 1_796_000_000))
        #expect(session.lastSeenAt == Date(timeIntervalSince1970: 1_796_000_001.5))
        #expect(session.expiresAt == Date(timeIntervalSince1970: 1_796_001_800))
        #expect(session.absoluteDeadline == Date(timeIntervalSince1970: 1_796_086_400))
        #expect(session.userID == "ada")
        #expect(session.authenticatedAt == Date(timeIntervalSince1970: 1_796_000_001))
        #expect(session.isPersistent)
        #expect(session.client.ipAddress == "192.0.2.7")
        #expect(session.client.userAgent == nil, "an empty user agent reads as none")
        #expect(session.version == 42)
        #expect(session.deviceBinding == binding)
        #expect(try session.values["cart"]?.decode(as: [String].self) == ["tea"])
        #expect(try session.values["a:b"]?.decode(as: Int.self) == 3, "a value's name keeps everything after `v:`")
        #expect(session.values.count == 2)
    }

    @Test func anEmptyHashIsNoSession() throws {
        #expect(try RedisSessionStore.session(key, .array([])) == nil)
    }

    @Test(arguments: ["m:created", "m:last", "m:idle", "m:abs"])
    func aMissingOrMalformedTimeIsCorrupt(_ field: String) throws {
        for broken in [complete.filter { $0.0 != field }, complete.map { $0.0 == field ? ($0.0, "12a4") : $0 }] {
            #expect(throws: SessionStoreError.self) { try RedisSessionStore.session(key, reply(broken)) }
        }
    }

    @Test func aBindingThatIsNotOneIsCorrupt() throws {
        #expect(throws: SessionStoreError.self) { try RedisSessionStore.session(key, reply(complete + [("m:bind", "{}")])) }
    }

    @Test func absentOptionalFieldsReadAsTheirDefaults() throws {
        let minimal = complete.filter { ["m:created", "m:last", "m:idle", "m:abs"].contains($0.0) }
        let session = try #require(try RedisSessionStore.session(key, reply(minimal)))
        #expect(session.userID == nil && session.authenticatedAt == nil && !session.isPersistent)
        #expect(session.version == 0 && session.values.isEmpty && session.deviceBinding == nil)
    }
}
