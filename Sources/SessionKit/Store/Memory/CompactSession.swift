import Foundation

/// The memory store's encoded form of a session (everything but its key), as short as a
/// session can be written: the four times as 8 bytes each, the version, a flags byte, the
/// sign-in time when there is one, the user, the client's address and user agent as
/// optional strings, each value's name and JSON, and the device binding's stored form when
/// there is one. Numbers and lengths are LEB128
/// varints; an optional string's length is stored plus one, so 0 means absent.
enum CompactSession {
    private static let persistentFlag: UInt8 = 1
    private static let authenticatedFlag: UInt8 = 2
    private static let deviceBoundFlag: UInt8 = 4

    /// The session's bytes; throws when one of its live values does not encode as JSON.
    static func encode(_ session: StoredSession) throws -> [UInt8] {
        var values = [(name: String, json: Data)]()
        values.reserveCapacity(session.values.count)
        var valueBytes = 0
        for (name, value) in session.values {
            let json = try value.encodedJSON()
            values.append((name, json))
            valueBytes += name.utf8.count + json.count + 10  // and two lengths, 5 bytes at most each
        }
        let texts = [session.userID, session.client.ipAddress, session.client.userAgent]
        var bytes = [UInt8]()
        // Enough for the times, version, flags and count (64 bytes at most), texts and values.
        bytes.reserveCapacity(64 + valueBytes + texts.reduce(0) { $0 + ($1?.utf8.count ?? 0) + 5 })
        for time in [session.createdAt, session.lastSeenAt, session.idleDeadline, session.absoluteDeadline] {
            append(time.timeIntervalSinceReferenceDate.bitPattern, to: &bytes)
        }
        appendVarint(session.version, to: &bytes)
        var flags: UInt8 = session.isPersistent ? persistentFlag : 0
        if session.authenticatedAt != nil { flags |= authenticatedFlag }
        let binding = session.deviceBinding?.storedForm
        if binding != nil { flags |= deviceBoundFlag }
        bytes.append(flags)
        if let authenticatedAt = session.authenticatedAt {
            append(authenticatedAt.timeIntervalSinceReferenceDate.bitPattern, to: &bytes)
        }
        for text in texts {
            if let text {
                appendVarint(UInt64(text.utf8.count) + 1, to: &bytes)
                bytes.append(contentsOf: text.utf8)
            } else {
                bytes.append(0)
            }
        }
        appendVarint(UInt64(values.count), to: &bytes)
        for (name, json) in values {
            appendVarint(UInt64(name.utf8.count), to: &bytes)
            bytes.append(contentsOf: name.utf8)
            appendVarint(UInt64(json.count), to: &bytes)
            bytes.append(contentsOf: json)
        }
        if let binding {
            appendVarint(UInt64(binding.utf8.count), to: &bytes)
            bytes.append(contentsOf: binding.utf8)
        }
        return bytes
    }

    /// The length of `encode(session)`, without building it (the sealed cookie's size guard).
    static func encodedCount(_ session: StoredSession) throws -> Int {
        func varintCount(_ value: UInt64) -> Int { value < 0x80 ? 1 : 1 + varintCount(value >> 7) }
        var count = 4 * 8 + varintCount(session.version) + 1 + (session.authenticatedAt == nil ? 0 : 8)
        for text in [session.userID, session.client.ipAddress, session.client.userAgent] {
            count += text.map { varintCount(UInt64($0.utf8.count) + 1) + $0.utf8.count } ?? 1
        }
        count += varintCount(UInt64(session.values.count))
        for (name, value) in session.values {
            let json = try value.encodedJSON().count
            count += varintCount(UInt64(name.utf8.count)) + name.utf8.count + varintCount(UInt64(json)) + json
        }
        if let binding = session.deviceBinding?.storedForm {
            count += varintCount(UInt64(binding.utf8.count)) + binding.utf8.count
        }
        return count
    }

    /// The session `encode` wrote; `nil` only if `bytes` are not such an encoding. With
    /// `sharingDecodes`, every copy of a value decodes its JSON once (for the memory store,
    /// whose sessions are handed to one request after another).
    static func decode(_ bytes: UnsafeRawBufferPointer, key: SessionStorageKey, sharingDecodes: Bool = false) -> StoredSession? {
        var reader = Reader(bytes: bytes)
        guard let createdAt = reader.date(), let lastSeenAt = reader.date(), let idleDeadline = reader.date(),
            let absoluteDeadline = reader.date(), let version = reader.varint(), let flags = reader.byte()
        else { return nil }
        var authenticatedAt: Date?
        if flags & authenticatedFlag != 0 {
            guard let date = reader.date() else { return nil }
            authenticatedAt = date
        }
        guard let userID = reader.optionalText(), let ipAddress = reader.optionalText(),
            let userAgent = reader.optionalText(), let count = reader.varint()
        else { return nil }
        var values = [String: SessionValue](minimumCapacity: Int(count))
        for _ in 0..<count {
            guard let name = reader.text(), let json = reader.data() else { return nil }
            values[name] = sharingDecodes ? SessionValue(sharedEncodedJSON: json) : SessionValue(encodedJSON: json)
        }
        var deviceBinding: SessionDeviceBinding?
        if flags & deviceBoundFlag != 0 {
            guard let text = reader.text(), let binding = SessionDeviceBinding(storedForm: text) else { return nil }
            deviceBinding = binding
        }
        return StoredSession(
            key: key,
            values: values,
            createdAt: createdAt,
            lastSeenAt: lastSeenAt,
            idleDeadline: idleDeadline,
            absoluteDeadline: absoluteDeadline,
            userID: userID.value,
            authenticatedAt: authenticatedAt,
            isPersistent: flags & persistentFlag != 0,
            client: SessionClient(ipAddress: ipAddress.value, userAgent: userAgent.value),
            deviceBinding: deviceBinding,
            version: version
        )
    }

    private static func append(_ word: UInt64, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: word.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// Reads what `encode` wrote; every read answers `nil` past the end.
    private struct Reader {
        /// A string that may be absent, as read (a read answering `nil` means the bytes ended).
        struct OptionalText {
            var value: String?
        }

        let bytes: UnsafeRawBufferPointer
        var offset = 0

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func word() -> UInt64? {
            guard offset + 8 <= bytes.count else { return nil }
            defer { offset += 8 }
            return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        }

        mutating func date() -> Date? {
            word().map { Date(timeIntervalSinceReferenceDate: Double(bitPattern: $0)) }
        }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while shift < 64, let byte = byte() {
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }

        mutating func slice(length: UInt64) -> UnsafeRawBufferPointer? {
            guard length <= bytes.count - offset else { return nil }
            defer { offset += Int(length) }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(length)])
        }

        mutating func text() -> String? {
            varint().flatMap { slice(length: $0) }.map { String(decoding: $0, as: UTF8.self) }
        }

        mutating func data() -> Data? { varint().flatMap { slice(length: $0) }.map { Data($0) } }

        mutating func optionalText() -> OptionalText? {
            guard let lengthPlusOne = varint() else { return nil }
            guard lengthPlusOne > 0 else { return OptionalText(value: nil) }
            return slice(length: lengthPlusOne - 1).map { OptionalText(value: String(decoding: $0, as: UTF8.self)) }
        }
    }
}
