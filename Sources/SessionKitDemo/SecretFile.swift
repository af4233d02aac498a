import Foundation
import SessionKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The demo's generated sealing secret: 32 random bytes, base64url, in a file only its
/// owner may read. Made on first use; refused when others may read it.
struct SecretFile {
    let path: String

    func secret() throws -> [UInt8] {
        let manager = FileManager.default
        if !manager.fileExists(atPath: path) {
            try create()
            printLine("generated a sealing secret in \(path) (readable by its owner only)")
        }
        let attributes = try manager.attributesOfItem(atPath: path)
        let permissions = (attributes[.posixPermissions] as? NSNumber)?.uint16Value ?? 0
        guard permissions & 0o077 == 0 else {
            throw DemoStartError("\(path) may be read by others (mode \(String(permissions, radix: 8))); chmod 600 it, or pass --secret")
        }
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.utf8.count >= 32 else { throw DemoStartError("\(path) holds fewer than 32 bytes; remove it to make a new secret") }
        return Array(text.utf8)
    }

    private func create() throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let bytes = SecureRandom.bytes(32)
        let text = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        // Created with owner-only permissions (never readable by others, not even for a
        // moment), and only if no file is there.
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw DemoStartError("could not create \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let line = Array((text + "\n").utf8)
        guard write(descriptor, line, line.count) == line.count else { throw DemoStartError("could not write \(path)") }
    }
}

/// A start-up failure of the demo, printed as it is.
struct DemoStartError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
