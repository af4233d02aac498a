public import Foundation
import Synchronization

/// One stored value in whichever form its store needs: the live Swift value, its JSON
/// encoding, or both.
///
/// The memory store keeps recently used sessions' values live and encodes the others.
/// Stores that persist call ``encodedJSON()`` for the keys that changed, and build values
/// from the bytes they read with ``init(encodedJSON:)``; the session decodes only the keys
/// a handler reads, once per request.
public struct SessionValue: Sendable {
    // Kept small, because a session's values dictionary holds one per key (48 bytes
    // here): the live value needs only `Encodable` (reading it back is a cast), and the
    // rare pairing of both forms lives behind one reference.
    private enum Form: Sendable {
        case live(any Encodable & Sendable)
        case encoded(Data)
        case both(Both)
        case shared(Shared)
    }

    private final class Both: Sendable {
        let value: any Encodable & Sendable
        let encoded: Data
        init(value: any Encodable & Sendable, encoded: Data) {
            self.value = value
            self.encoded = encoded
        }
    }

    /// JSON that every copy of a value decodes once: the first read's value is kept for the
    /// copies that follow (the memory store's recently used sessions, read by one request
    /// after another, would otherwise decode the same bytes on every request). The value
    /// a reader gets is its own copy, as with the other forms; a `Sendable` class shared
    /// this way is shared as any stored live value is.
    private final class Shared: Sendable {
        let encoded: Data
        let decoded = Mutex<(any Encodable & Sendable)?>(nil)
        init(encoded: Data) { self.encoded = encoded }
    }

    private var form: Form

    /// Wraps a live value; nothing is encoded until a store asks.
    public init<Value: Codable & Sendable>(_ value: Value) {
        self.form = .live(value)
    }

    /// Wraps the JSON a store read back; nothing is decoded until a handler asks.
    public init(encodedJSON: Data) {
        self.form = .encoded(encodedJSON)
    }

    /// JSON read back that every copy of this value decodes once (see `Shared`): for a
    /// store that hands the same session to one request after another.
    init(sharedEncodedJSON: Data) {
        self.form = .shared(Shared(encoded: sharedEncodedJSON))
    }

    /// The value's JSON encoding, encoding the live value when no bytes are held.
    public func encodedJSON() throws -> Data {
        switch form {
        case .encoded(let data): return data
        case .both(let both): return both.encoded
        case .shared(let shared): return shared.encoded
        case .live(let value): return try Self.encoded(value)
        }
    }

    /// A copy that holds the JSON encoding beside the live value, so that later
    /// ``encodedJSON()`` calls (a size check, then the write) encode once.
    func withEncodedJSON() throws -> SessionValue {
        guard case .live(let value) = form else { return self }
        var copy = self
        copy.form = .both(Both(value: value, encoded: try Self.encoded(value)))
        return copy
    }

    /// Whether a later read costs no decoding: the live value is held, or kept by every
    /// copy once one has decoded it.
    var readsWithoutDecoding: Bool {
        if case .encoded = form { return false }
        return true
    }

    /// The value as `Value`: the live value when it has that type, otherwise decoded
    /// from JSON (encoding the live value first when needed). Throws when it does not
    /// decode as `Value`.
    public func decode<Value: Codable & Sendable>(as type: Value.Type) throws -> Value {
        switch form {
        case .live(let value):
            if let typed = value as? Value { return typed }
        case .both(let both):
            if let typed = both.value as? Value { return typed }
        case .shared(let shared):
            if let typed = shared.decoded.withLock({ $0 }) as? Value { return typed }
            let value = try Self.decoded(Value.self, from: shared.encoded)
            // The first type read is kept; a value read as two types (rare) decodes the other each time.
            shared.decoded.withLock { if $0 == nil { $0 = value } }
            return value
        case .encoded: break
        }
        return try Self.decoded(Value.self, from: try encodedJSON())
    }

    private static func encoded(_ value: any Encodable & Sendable) throws -> Data {
        try ScalarJSON.encode(value) ?? encoder.encode(value)
    }

    private static func decoded<Value: Codable & Sendable>(_ type: Value.Type, from json: Data) throws -> Value {
        try ScalarJSON.decode(type, from: json) ?? decoder.decode(type, from: json)
    }

    /// A copy that also holds `value` as its live form, so later reads skip decoding.
    func holding<Value: Codable & Sendable>(decoded value: Value) -> SessionValue {
        guard case .encoded(let data) = form else { return self }
        var copy = self
        copy.form = .both(Both(value: value, encoded: data))
        return copy
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}
